using Ringvisor.Core.Vm;

namespace Ringvisor.Devices.Tests.Support;

internal sealed class RecordingVmControl : IVmControl
{
    public List<(VmStopReason Reason, int Status)> Stops { get; } = [];

    public void RequestStop(VmStopReason reason, int exitStatus, string? detail = null) => Stops.Add((reason, exitStatus));
}
