using Ringvisor.Core.Interrupts;

namespace Ringvisor.Devices.Tests.Support;

internal sealed class CountingWakeup : IVcpuWakeup
{
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public void Wake() => Interlocked.Increment(ref _count);
}
