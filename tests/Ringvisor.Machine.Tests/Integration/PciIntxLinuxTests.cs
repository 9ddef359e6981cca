// The default guest with MSI off (pci=nomsi) must get its virtio interrupts over PCI INTx: booted with acpi=off Linux
// runs on the 8259s (XT-PIC, the IRQ from the interrupt line register, level-triggered per the ELCR); with the
// machine's ACPI tables Linux uses the IOAPIC and finds the routing in the DSDT's _PRT (and powers off through \_S5).
// The scenario is LinuxScenarios.DiskWithoutMsiOverIntx; KvmLinuxTests runs it under kvm.

namespace Ringvisor.Machine.Tests.Integration;

public sealed class PciIntxLinuxTests
{
    [Theory]
    [InlineData(1, "XT-PIC")]
    [InlineData(2, "IO-APIC")]
    public void DiskWithoutMsi_Bt_ReadsFileOverIntx(int cpus, string controller) =>
        LinuxScenarios.DiskWithoutMsiOverIntx(EngineKind.Bt, cpus, controller);
}
