// Which guest-physical pages hold decoded instructions, so stores to them can invalidate the decoder cache
// (self-modifying and cross-modifying code, module loading, DMA into code pages).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Ringvisor.Core.Memory;

namespace Ringvisor.Emulator.Memory;

/// <summary>
/// One bit per guest-physical RAM page, shared by every vCPU of a VM. The decoder cache marks a page (through
/// <see cref="Mmu.MarkCodePage"/>) before it reads instructions from it; the first store to a marked page by any
/// vCPU (or a device DMA reported through <see cref="InvalidateRange"/>) clears the bit and raises
/// <see cref="PageWritten"/> after the bytes are in memory. Pages outside RAM are never tracked.
/// </summary>
public sealed class CodePageTracker
{
    private readonly ulong[] _bits;
    private readonly int[] _generations;
    private readonly ulong _pageCount;
    private long _reports;

    public CodePageTracker(ulong memoryEnd)
    {
        _pageCount = (memoryEnd + MemoryLayout.PageSize - 1) / MemoryLayout.PageSize;
        _bits = new ulong[(_pageCount + 63) / 64];
        _generations = new int[_pageCount];
    }

    /// <summary>
    /// Raised with the guest-physical base address of a marked page after a store changed it. Runs on the storing
    /// thread (a vCPU, or whoever called <see cref="InvalidateRange"/>); handlers must be thread-safe and must not
    /// call back into that vCPU's <see cref="Mmu"/> accessors. An event, not a settable delegate: subscribing is
    /// atomic, so vCPU threads starting together cannot lose each other's subscription (a lost one left the
    /// translation cache running units of rewritten code).
    /// </summary>
    public event Action<ulong>? PageWritten;

    /// <summary>How many times a marked page was reported written (self-modifying code, DMA over code), for --stats.</summary>
    public long WriteReports => Interlocked.Read(ref _reports);

    /// <summary>True while the page holding <paramref name="physicalAddress"/> is marked as code.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsCodePage(ulong physicalAddress)
    {
        ulong page = physicalAddress >> 12;
        return page < _pageCount && (Volatile.Read(ref _bits[page >> 6]) & (1UL << (int)(page & 63))) != 0;
    }

    /// <summary>
    /// How many times the page holding <paramref name="physicalAddress"/> was written while marked; -1 outside RAM.
    /// A decoder cache may record it when decoding and compare before use instead of (or as well as) handling
    /// <see cref="PageWritten"/>. It is incremented before <see cref="PageWritten"/> is raised.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Generation(ulong physicalAddress)
    {
        ulong page = physicalAddress >> 12;
        return page < _pageCount ? Volatile.Read(ref _generations[page]) : -1;
    }

    /// <summary>
    /// <see cref="Generation"/> by page number (guest-physical address >> 12): what decoded-code caches keyed by page
    /// number (the interpreter's CodePage, translated units) compare. -1 outside RAM.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int PageGeneration(ulong pageNumber)
    {
        // The interpreter calls this for every instruction: skip the second (array) bounds check, since
        // _generations has exactly _pageCount elements and pageNumber was just checked against it.
        return pageNumber < _pageCount
            ? Volatile.Read(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_generations), (nint)pageNumber))
            : -1;
    }

    /// <summary>
    /// Reports that something other than a vCPU store (device DMA, a loader) wrote guest-physical
    /// [<paramref name="physicalAddress"/>, +<paramref name="length"/>): marked pages in it are unmarked and reported.
    /// </summary>
    public void InvalidateRange(ulong physicalAddress, ulong length)
    {
        if (length == 0)
        {
            return;
        }

        ulong first = physicalAddress >> 12;
        ulong last = (physicalAddress + (length - 1)) >> 12;
        if (last < first)
        {
            last = ulong.MaxValue >> 12; // the range wrapped past 2^64: clip it
        }

        last = Math.Min(last, _pageCount == 0 ? 0 : _pageCount - 1);
        for (ulong p = first; p <= last && p < _pageCount; p++)
        {
            NotifyWrite(p << 12);
        }
    }

    /// <summary>Sets the bit; true when it was clear (the caller must then drop writable TLB entries).</summary>
    internal bool TryMark(ulong physicalAddress)
    {
        ulong page = physicalAddress >> 12;
        if (page >= _pageCount)
        {
            return false;
        }

        ulong mask = 1UL << (int)(page & 63);
        ref ulong word = ref _bits[page >> 6];
        if ((Volatile.Read(ref word) & mask) != 0)
        {
            return false;
        }

        return (Interlocked.Or(ref word, mask) & mask) == 0;
    }

    /// <summary>After a store to the page holding <paramref name="physicalAddress"/>: unmark it and report it if it was code.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void NotifyWrite(ulong physicalAddress)
    {
        if (IsCodePage(physicalAddress))
        {
            ClearAndReport(physicalAddress >> 12);
        }
    }

    private void ClearAndReport(ulong page)
    {
        ulong mask = 1UL << (int)(page & 63);
        if ((Interlocked.And(ref _bits[page >> 6], ~mask) & mask) != 0)
        {
            Interlocked.Increment(ref _generations[page]);
            Interlocked.Increment(ref _reports);
            PageWritten?.Invoke(page << 12);
        }
    }
}
