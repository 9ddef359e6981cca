// The default guest (Debian's cloud kernel + busybox initramfs) boots under the bt engine and runs a scripted
// session (LinuxScenarios.ScriptedSession: uname, /proc/cpuinfo, /proc/interrupts, a shell loop, md5sum of generated
// data checked against the host's md5 of the same bytes, and poweroff). These are the slow tests of the suite (a boot
// executes ~1.5 billion guest instructions in the interpreter). KvmLinuxTests runs the same script under kvm.
namespace Ringvisor.Machine.Tests.Integration;

public sealed class LinuxBootTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void DefaultGuest_Bt_BootsAndRunsScriptedSession(int cpus) => LinuxScenarios.ScriptedSession(EngineKind.Bt, cpus);

    /// <summary>
    /// The same session with every translated unit checked against guest memory before it runs
    /// (MachineConfig.BtVerifyUnits): a missed invalidation stops the VM naming the unit, even where running the stale
    /// code would not have crashed the guest. Two vCPUs, whose threads set up translation at the same time.
    /// </summary>
    [Fact]
    public void DefaultGuest_Bt_TwoVcpus_EveryUnitMatchesGuestMemory() =>
        LinuxScenarios.ScriptedSession(EngineKind.Bt, 2, verifyUnits: true);
}
