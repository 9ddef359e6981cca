// The port the in-process engine benchmarks' guests write to when they are done (reads as zero).
using Ringvisor.Core.Bus;

namespace Ringvisor.Bench;

internal sealed class BenchDoneDevice(Action done) : IBusDevice
{
    public void Read(ulong offset, Span<byte> data) => data.Clear();

    public void Write(ulong offset, ReadOnlySpan<byte> data) => done();
}
