using Ringvisor.Devices.Legacy;

namespace Ringvisor.Machine;

/// <summary>Adapts a delegate (the CLI's stdout writer, a test's buffer) to the UART's output port.</summary>
internal sealed class SerialOutputSink(Action<ReadOnlySpan<byte>> write) : ISerialOutput
{
    public void Write(ReadOnlySpan<byte> data) => write(data);
}
