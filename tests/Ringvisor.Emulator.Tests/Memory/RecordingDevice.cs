// A bus device for the MMU tests: remembers every access and answers reads with a byte pattern.
using Ringvisor.Core.Bus;

namespace Ringvisor.Emulator.Tests.Memory;

internal sealed class RecordingDevice : IBusDevice
{
    public List<(bool Write, ulong Offset, int Size, ulong Value)> Accesses { get; } = [];

    /// <summary>Reads return byte (offset + i) xor this.</summary>
    public byte Pattern { get; set; } = 0x50;

    public void Read(ulong offset, Span<byte> data)
    {
        ulong v = 0;
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (byte)((offset + (ulong)i) ^ Pattern);
            v |= (ulong)data[i] << (8 * i);
        }

        lock (Accesses)
        {
            Accesses.Add((false, offset, data.Length, v));
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        ulong v = 0;
        for (int i = 0; i < data.Length; i++)
        {
            v |= (ulong)data[i] << (8 * i);
        }

        lock (Accesses)
        {
            Accesses.Add((true, offset, data.Length, v));
        }
    }

    public static byte Expected(ulong offset, byte pattern = 0x50) => (byte)(offset ^ pattern);
}
