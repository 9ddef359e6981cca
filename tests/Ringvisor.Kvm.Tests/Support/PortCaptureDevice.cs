// A test device that records every write (offset, value, size) and answers reads from a byte sequence.
using System.Text;
using Ringvisor.Core.Bus;

namespace Ringvisor.Kvm.Tests.Support;

internal sealed class PortCaptureDevice : IBusDevice
{
    private readonly object _gate = new();
    private readonly List<(ulong Offset, ulong Value, int Size)> _writes = [];
    private byte _nextReadByte;

    /// <param name="firstReadByte">Reads return consecutive bytes starting here (0x10, 0x11, ...).</param>
    public PortCaptureDevice(byte firstReadByte = 0)
    {
        _nextReadByte = firstReadByte;
    }

    public IReadOnlyList<(ulong Offset, ulong Value, int Size)> Writes
    {
        get
        {
            lock (_gate)
            {
                return [.. _writes];
            }
        }
    }

    /// <summary>The low bytes of the byte-sized writes, as ASCII.</summary>
    public string Text
    {
        get
        {
            lock (_gate)
            {
                var sb = new StringBuilder();
                foreach (var w in _writes)
                {
                    if (w.Size == 1)
                    {
                        sb.Append((char)w.Value);
                    }
                }

                return sb.ToString();
            }
        }
    }

    public void Read(ulong offset, Span<byte> data)
    {
        lock (_gate)
        {
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = _nextReadByte++;
            }
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        ulong v = 0;
        for (int i = data.Length - 1; i >= 0; i--)
        {
            v = (v << 8) | data[i];
        }

        lock (_gate)
        {
            _writes.Add((offset, v, data.Length));
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Waits until at least <paramref name="count"/> writes were seen.</summary>
    public bool WaitForWrites(int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_gate)
        {
            while (_writes.Count < count)
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !Monitor.Wait(_gate, left))
                {
                    return _writes.Count >= count;
                }
            }

            return true;
        }
    }
}
