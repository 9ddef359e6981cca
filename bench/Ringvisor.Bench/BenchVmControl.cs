// The VM control the in-process engine benchmarks (mips, jit) give the bt engine: records that the guest asked to stop.
using Ringvisor.Core.Vm;

namespace Ringvisor.Bench;

internal sealed class BenchVmControl : IVmControl
{
    public volatile bool Stopped;

    public void RequestStop(VmStopReason reason, int exitStatus, string? detail = null) => Stopped = true;
}
