// Counts writes to the bench port: the cheapest device a PIO exit can reach through the IoBus.
using Ringvisor.Core.Bus;

namespace Ringvisor.Bench.Pio;

internal sealed class CountingPortDevice : IBusDevice
{
    public long Count { get; private set; }

    public void Read(ulong offset, Span<byte> data) => data.Clear();

    public void Write(ulong offset, ReadOnlySpan<byte> data) => Count++;
}
