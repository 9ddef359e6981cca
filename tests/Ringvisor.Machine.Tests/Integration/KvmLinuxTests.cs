// The default guest under the kvm engine, on hosts whose /dev/kvm is backed by VT-x/AMD-V ([KvmHardwareFact]; the
// dev machine's KVM emulates guest CPL 0 and cannot run a stock kernel, so these skip there): the same scenarios as
// the bt tests (LinuxScenarios) with 1, 2 and 4 vCPUs, a virtio-blk disk through the ioeventfd path, two VMs on a
// switch, and the disk over PCI INTx (pci=nomsi) on the in-kernel PIC and IOAPIC. Timeouts are KVM's (LinuxSession.KvmBootLimit): a guest that does not come up fails within a minute, with
// the console tail and the VM's stop reason in the message.
using Ringvisor.TestSupport;

namespace Ringvisor.Machine.Tests.Integration;

public sealed class KvmLinuxTests
{
    [KvmHardwareFact]
    public void DefaultGuest_Kvm_OneVcpu_BootsAndRunsScriptedSession() => LinuxScenarios.ScriptedSession(EngineKind.Kvm, 1);

    [KvmHardwareFact]
    public void DefaultGuest_Kvm_TwoVcpus_BootsAndRunsScriptedSession() => LinuxScenarios.ScriptedSession(EngineKind.Kvm, 2);

    [KvmHardwareFact]
    public void DefaultGuest_Kvm_FourVcpus_BootsAndRunsScriptedSession() => LinuxScenarios.ScriptedSession(EngineKind.Kvm, 4);

    [KvmHardwareFact]
    public void Disk_Kvm_WriteSyncKillRestart_FileIntact() => LinuxScenarios.DiskWriteSyncKillRestart(EngineKind.Kvm);

    [KvmHardwareFact]
    public void TwoVmsOnOneSwitch_Kvm_PingAndTransferWithMatchingChecksum() => LinuxScenarios.TwoVmsOnOneSwitch(EngineKind.Kvm);

    /// <summary>The in-kernel 8259s with the ELCR set for IRQs 10/11 (one vCPU, guest booted with acpi=off).</summary>
    [KvmHardwareFact]
    public void DiskWithoutMsi_Kvm_OneVcpu_ReadsFileOverIntxOnThePic() => LinuxScenarios.DiskWithoutMsiOverIntx(EngineKind.Kvm, 1, "XT-PIC");

    /// <summary>The in-kernel IOAPIC through GSI routes 16-19 (the _PRT), and power-off through ACPI S5 under kvm.</summary>
    [KvmHardwareFact]
    public void DiskWithoutMsi_Kvm_TwoVcpus_ReadsFileOverIntxOnTheIoApic() => LinuxScenarios.DiskWithoutMsiOverIntx(EngineKind.Kvm, 2, "IO-APIC");
}
