using Ringvisor.Core.Vm;

namespace Ringvisor.Machine;

/// <summary>How and why a VM ended, and the exit status the VMM process should return.</summary>
public sealed record VmStopResult(VmStopReason Reason, int ExitStatus, string? Detail)
{
    /// <summary>The VMM's exit status per stop reason (README, "Exit status").</summary>
    public static int DefaultExitStatus(VmStopReason reason) => reason switch
    {
        VmStopReason.PowerOff or VmStopReason.Reset or VmStopReason.HaltedForever or VmStopReason.UserQuit => 0,
        VmStopReason.TripleFault => 3,
        VmStopReason.EngineError => 4,
        _ => 1,
    };
}
