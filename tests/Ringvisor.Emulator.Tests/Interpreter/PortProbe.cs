// A port device for tests: reports each 32-bit value the guest writes to it (reads return 0), so a test can act in
// the middle of a guest run.
namespace Ringvisor.Emulator.Tests.Interpreter;

internal sealed class PortProbe(Action<uint> written) : Ringvisor.Core.Bus.IBusDevice
{
    public void Read(ulong offset, Span<byte> data) => data.Clear();

    public void Write(ulong offset, ReadOnlySpan<byte> data) => written(BitConverter.ToUInt32(data));
}
