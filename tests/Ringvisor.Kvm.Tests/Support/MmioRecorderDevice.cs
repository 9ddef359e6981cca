// A test MMIO device: records writes as (offset, bytes) and answers reads with offset-derived bytes.
using Ringvisor.Core.Bus;

namespace Ringvisor.Kvm.Tests.Support;

internal sealed class MmioRecorderDevice : IBusDevice
{
    private readonly object _gate = new();
    private readonly List<(ulong Offset, byte[] Data)> _writes = [];
    private readonly List<(ulong Offset, int Length)> _reads = [];

    public IReadOnlyList<(ulong Offset, byte[] Data)> Writes
    {
        get
        {
            lock (_gate)
            {
                return [.. _writes];
            }
        }
    }

    public IReadOnlyList<(ulong Offset, int Length)> Reads
    {
        get
        {
            lock (_gate)
            {
                return [.. _reads];
            }
        }
    }

    /// <summary>What a read at <paramref name="offset"/> returns in byte <paramref name="i"/>.</summary>
    public static byte ReadByteAt(ulong offset, int i) => (byte)(0xA0 + (int)(offset & 0xF) + i);

    public void Read(ulong offset, Span<byte> data)
    {
        lock (_gate)
        {
            _reads.Add((offset, data.Length));
        }

        for (int i = 0; i < data.Length; i++)
        {
            data[i] = ReadByteAt(offset, i);
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            _writes.Add((offset, data.ToArray()));
        }
    }
}
