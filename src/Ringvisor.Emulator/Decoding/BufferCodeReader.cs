// A reusable Iced code reader over a small byte buffer (no allocation per decode).
using Iced.Intel;

namespace Ringvisor.Emulator.Decoding;

internal sealed class BufferCodeReader : CodeReader
{
    public readonly byte[] Buffer = new byte[32];
    public int Position;
    public int Length;

    public override int ReadByte() => Position < Length ? Buffer[Position++] : -1;
}
