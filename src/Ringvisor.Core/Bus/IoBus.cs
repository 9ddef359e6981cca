// PIO or MMIO address-range map: registration with overlap detection, dispatch by address.
// Unclaimed reads return all ones (as an ISA/PCI bus with nothing driving it does); unclaimed writes are
// counted and dropped.
using System.Runtime.CompilerServices;

namespace Ringvisor.Core.Bus;

public sealed class IoBus
{
    private readonly object _gate = new();

    // Sorted by Start; replaced copy-on-write so lookups take no lock (PCI BARs move at run time).
    private volatile BusRange[] _ranges = [];
    private long _unclaimedReads;
    private long _unclaimedWrites;

    public IoBus(string name, ulong addressLimit)
    {
        Name = name;
        AddressLimit = addressLimit;
    }

    public string Name { get; }

    /// <summary>One past the highest address (0x10000 for PIO).</summary>
    public ulong AddressLimit { get; }

    public long UnclaimedReads => Interlocked.Read(ref _unclaimedReads);

    public long UnclaimedWrites => Interlocked.Read(ref _unclaimedWrites);

    public IReadOnlyList<BusRange> Ranges => _ranges;

    /// <exception cref="ArgumentException">The window is empty, exceeds the bus, or overlaps a registered one.</exception>
    public void Register(ulong start, ulong length, IBusDevice device, string name)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (length == 0 || start >= AddressLimit || length > AddressLimit - start)
        {
            throw new ArgumentException($"{Name} bus: window {start:X}+{length:X} for '{name}' is outside the bus (limit {AddressLimit:X})");
        }

        lock (_gate)
        {
            foreach (var r in _ranges)
            {
                if (r.Overlaps(start, length))
                {
                    throw new ArgumentException(
                        $"{Name} bus: '{name}' at {start:X}..{start + length - 1:X} overlaps '{r.Name}' at {r.Start:X}..{r.End - 1:X}");
                }
            }

            var list = new List<BusRange>(_ranges) { new(start, length, device, name) };
            list.Sort((a, b) => a.Start.CompareTo(b.Start));
            _ranges = [.. list];
        }
    }

    /// <summary>Removes the window that starts at <paramref name="start"/> and belongs to <paramref name="device"/>.</summary>
    public bool Unregister(ulong start, IBusDevice device)
    {
        lock (_gate)
        {
            var list = new List<BusRange>(_ranges);
            int i = list.FindIndex(r => r.Start == start && ReferenceEquals(r.Device, device));
            if (i < 0)
            {
                return false;
            }

            list.RemoveAt(i);
            _ranges = [.. list];
            return true;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public BusRange? Find(ulong address, ulong length)
    {
        var ranges = _ranges;
        int lo = 0, hi = ranges.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var r = ranges[mid];
            if (address < r.Start)
            {
                hi = mid - 1;
            }
            else if (address >= r.End)
            {
                lo = mid + 1;
            }
            else
            {
                // The access must fit inside the window; one that straddles two windows is unclaimed.
                return length <= r.End - address ? r : null;
            }
        }

        return null;
    }

    /// <summary>Dispatches a read; returns false (and all-ones data) when no device claims the whole access.</summary>
    public bool Read(ulong address, Span<byte> data)
    {
        var r = Find(address, (ulong)data.Length);
        if (r is null)
        {
            data.Fill(0xFF);
            Interlocked.Increment(ref _unclaimedReads);
            return false;
        }

        r.Device.Read(address - r.Start, data);
        return true;
    }

    /// <summary>Dispatches a write; returns false (and drops it) when no device claims the whole access.</summary>
    public bool Write(ulong address, ReadOnlySpan<byte> data)
    {
        var r = Find(address, (ulong)data.Length);
        if (r is null)
        {
            Interlocked.Increment(ref _unclaimedWrites);
            return false;
        }

        r.Device.Write(address - r.Start, data);
        return true;
    }
}
