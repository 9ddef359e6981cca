using Ringvisor.Devices.Legacy;

namespace Ringvisor.Devices.Tests.Support;

internal sealed class BufferOutput : ISerialOutput
{
    public List<byte> Bytes { get; } = [];

    public void Write(ReadOnlySpan<byte> data) => Bytes.AddRange(data.ToArray());
}
