// Little-endian conversion between register values and the 1/2/4/8-byte spans of IBusDevice accesses.
using System.Buffers.Binary;

namespace Ringvisor.Devices.Legacy;

internal static class PortValue
{
    /// <summary>The written value, zero-extended; bytes beyond 8 are ignored.</summary>
    public static ulong Get(ReadOnlySpan<byte> data)
    {
        Span<byte> buf = stackalloc byte[8];
        buf.Clear();
        data[..Math.Min(data.Length, 8)].CopyTo(buf);
        return BinaryPrimitives.ReadUInt64LittleEndian(buf);
    }

    /// <summary>Fills <paramref name="data"/> with the low bytes of <paramref name="value"/>; bytes beyond 8 read as 0.</summary>
    public static void Set(Span<byte> data, ulong value)
    {
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = i < 8 ? (byte)(value >> (i * 8)) : (byte)0;
        }
    }
}
