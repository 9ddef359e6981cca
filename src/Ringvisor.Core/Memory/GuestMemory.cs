// Guest-physical RAM: anonymous host mappings split around the 32-bit PCI hole, with bounds-checked access.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Ringvisor.Core.Native;

namespace Ringvisor.Core.Memory;

/// <summary>
/// Guest RAM. Every access is by guest-physical address and bounds-checked against the regions; an access that
/// touches a byte outside RAM returns <see cref="MemoryAccessResult.OutOfRange"/> and never reaches host memory.
/// Writes made through this class mark the dirty bitmap.
/// </summary>
public sealed unsafe class GuestMemory : IDisposable
{
    private readonly MemoryRegion[] _regions;
    private bool _disposed;

    private GuestMemory(MemoryRegion[] regions, ulong ramSize)
    {
        _regions = regions;
        RamSize = ramSize;
        ulong maxPage = regions[^1].End / MemoryLayout.PageSize;
        Dirty = new DirtyBitmap(maxPage);
    }

    /// <summary>Total bytes of RAM.</summary>
    public ulong RamSize { get; }

    public IReadOnlyList<MemoryRegion> Regions => _regions;

    /// <summary>Dirty pages written by the VMM (and by the bt engine); indexed by guest-physical page number.</summary>
    public DirtyBitmap Dirty { get; }

    /// <summary>Highest guest-physical address + 1 covered by RAM.</summary>
    public ulong End => _regions[^1].End;

    /// <summary>Maps <paramref name="ramSize"/> bytes of zeroed anonymous memory, split around the PCI hole.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The size is zero or not a multiple of 4 KiB.</exception>
    /// <exception cref="InvalidOperationException">The host refused the mapping.</exception>
    public static GuestMemory Create(ulong ramSize)
    {
        if (ramSize == 0 || ramSize % MemoryLayout.PageSize != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(ramSize), ramSize, "guest memory size must be a non-zero multiple of 4 KiB");
        }

        var ranges = MemoryLayout.Split(ramSize);
        var regions = new MemoryRegion[ranges.Count];
        for (int i = 0; i < ranges.Count; i++)
        {
            var (gpa, size) = ranges[i];
            nint host = LibC.mmap(0, (nuint)size, LibC.ProtRead | LibC.ProtWrite, LibC.MapPrivate | LibC.MapAnonymous | LibC.MapNoReserve, -1, 0);
            if (host == LibC.MapFailed)
            {
                int errno = Marshal.GetLastPInvokeError();
                for (int j = 0; j < i; j++)
                {
                    _ = LibC.munmap(regions[j].HostAddress, (nuint)regions[j].Size);
                }

                throw new InvalidOperationException($"cannot map {size >> 20} MiB of guest memory: errno {errno}");
            }

            _ = LibC.madvise(host, (nuint)size, LibC.MadvHugepage);
            regions[i] = new MemoryRegion(i, gpa, size, host, gpa / MemoryLayout.PageSize);
        }

        return new GuestMemory(regions, ramSize);
    }

    /// <summary>Finds the region holding [gpa, gpa+length), or null when any byte is outside RAM.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public MemoryRegion? FindRegion(ulong gpa, ulong length = 1)
    {
        var regions = _regions;
        for (int i = 0; i < regions.Length; i++)
        {
            if (regions[i].Contains(gpa, length))
            {
                return regions[i];
            }
        }

        return null;
    }

    public bool IsRam(ulong gpa, ulong length = 1) => FindRegion(gpa, length) is not null;

    /// <summary>
    /// Host pointer to guest-physical <paramref name="gpa"/> when [gpa, gpa+length) is RAM, otherwise 0.
    /// For engines' fast paths; the caller must stay within <paramref name="length"/> bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public nint GetHostPointer(ulong gpa, ulong length)
    {
        var r = FindRegion(gpa, length);
        return r is null ? 0 : r.HostAddress + (nint)(gpa - r.GuestPhysicalAddress);
    }

    /// <summary>A span over [gpa, gpa+length) when the whole range is RAM in one region.</summary>
    public bool TryGetSpan(ulong gpa, int length, out Span<byte> span)
    {
        if (length < 0)
        {
            span = default;
            return false;
        }

        var r = FindRegion(gpa, (ulong)length);
        if (r is null)
        {
            span = default;
            return false;
        }

        // SAFETY: FindRegion proved [gpa, gpa+length) lies inside the region's live mapping.
        span = new Span<byte>((void*)(r.HostAddress + (nint)(gpa - r.GuestPhysicalAddress)), length);
        return true;
    }

    /// <summary>A writable span; marks the covered pages dirty.</summary>
    public bool TryGetWritableSpan(ulong gpa, int length, out Span<byte> span)
    {
        if (!TryGetSpan(gpa, length, out span))
        {
            return false;
        }

        MarkDirty(gpa, (ulong)length);
        WriteObserver?.Invoke(gpa, (ulong)length);
        return true;
    }

    /// <summary>
    /// Called with (gpa, length) for every write made through this class (device DMA, loaders, the VMM), before
    /// the bytes land. The bt engine hooks it to drop decoded code on those pages; vCPU stores do not come here.
    /// </summary>
    public Action<ulong, ulong>? WriteObserver { get; set; }

    public MemoryAccessResult Read(ulong gpa, Span<byte> destination)
    {
        if (!TryGetSpan(gpa, destination.Length, out var src))
        {
            return MemoryAccessResult.OutOfRange;
        }

        src.CopyTo(destination);
        return MemoryAccessResult.Ok;
    }

    public MemoryAccessResult Write(ulong gpa, ReadOnlySpan<byte> source)
    {
        if (!TryGetWritableSpan(gpa, source.Length, out var dst))
        {
            return MemoryAccessResult.OutOfRange;
        }

        source.CopyTo(dst);
        return MemoryAccessResult.Ok;
    }

    public MemoryAccessResult Fill(ulong gpa, int length, byte value)
    {
        if (!TryGetWritableSpan(gpa, length, out var dst))
        {
            return MemoryAccessResult.OutOfRange;
        }

        dst.Fill(value);
        return MemoryAccessResult.Ok;
    }

    public bool TryRead<T>(ulong gpa, out T value)
        where T : unmanaged
    {
        if (!TryGetSpan(gpa, sizeof(T), out var src))
        {
            value = default;
            return false;
        }

        value = MemoryMarshal.Read<T>(src);
        return true;
    }

    public bool TryWrite<T>(ulong gpa, T value)
        where T : unmanaged
    {
        if (!TryGetWritableSpan(gpa, sizeof(T), out var dst))
        {
            return false;
        }

        MemoryMarshal.Write(dst, in value);
        return true;
    }

    public void MarkDirty(ulong gpa, ulong length)
    {
        if (length == 0)
        {
            return;
        }

        ulong first = gpa / MemoryLayout.PageSize;
        ulong last = (gpa + length - 1) / MemoryLayout.PageSize;
        Dirty.MarkRange(first, last - first + 1);
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var r in _regions)
        {
            _ = LibC.munmap(r.HostAddress, (nuint)r.Size);
        }
    }
}
