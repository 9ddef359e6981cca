namespace Ringvisor.Core.Vm;

/// <summary>What devices and engines use to end or reset the VM. Calls are idempotent: the first reason wins.</summary>
public interface IVmControl
{
    /// <param name="reason">Why the VM stops.</param>
    /// <param name="exitStatus">The VMM's process exit status for this stop.</param>
    /// <param name="detail">A human-readable detail line (engine errors), or null.</param>
    void RequestStop(VmStopReason reason, int exitStatus, string? detail = null);
}
