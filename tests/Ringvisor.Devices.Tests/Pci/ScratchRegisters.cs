// A BAR region that remembers what is written to it, so tests can see which window the bus routes to.
using Ringvisor.Core.Bus;

namespace Ringvisor.Devices.Tests.Pci;

internal sealed class ScratchRegisters(int size) : IBusDevice
{
    public byte[] Bytes { get; } = new byte[size];

    public void Read(ulong offset, Span<byte> data) => Bytes.AsSpan((int)offset, data.Length).CopyTo(data);

    public void Write(ulong offset, ReadOnlySpan<byte> data) => data.CopyTo(Bytes.AsSpan((int)offset));
}
