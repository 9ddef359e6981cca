// IVmControl for benchmarks: remembers a stop request (none is expected).
using Ringvisor.Core.Vm;

namespace Ringvisor.Bench.Pio;

internal sealed class BenchVmControl : IVmControl
{
    public string? Stop { get; private set; }

    public void RequestStop(VmStopReason reason, int exitStatus, string? detail = null) =>
        Stop ??= $"{reason} (status {exitStatus}){(detail is null ? "" : ": " + detail)}";
}
