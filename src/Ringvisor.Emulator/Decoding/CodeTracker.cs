// Which guest-physical pages hold decoded instructions, shared by all vCPUs of an engine. A store to a marked page
// bumps that page's generation; every vCPU's decode cache compares generations before using a cached page, so
// self-modifying code, module loading and DMA over code are seen at the next instruction fetch.
using System.Runtime.CompilerServices;

namespace Ringvisor.Emulator.Decoding;

public sealed class CodeTracker
{
    private readonly ulong[] _marks;
    private readonly int[] _generations;
    private readonly ulong _pageCount;

    public CodeTracker(ulong physicalEnd)
    {
        _pageCount = (physicalEnd + 0xFFF) >> 12;
        _marks = new ulong[(_pageCount + 63) / 64];
        _generations = new int[_pageCount];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsCode(ulong physPage) =>
        physPage < _pageCount && (Volatile.Read(ref _marks[physPage >> 6]) & (1UL << (int)(physPage & 63))) != 0;

    /// <summary>Current generation of a page (pages outside RAM never change: they are re-decoded every time).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Generation(ulong physPage) => physPage < _pageCount ? Volatile.Read(ref _generations[physPage]) : -1;

    internal void Mark(ulong physPage)
    {
        if (physPage < _pageCount)
        {
            Interlocked.Or(ref _marks[physPage >> 6], 1UL << (int)(physPage & 63));
        }
    }

    /// <summary>Called before a store lands on a page: drops decoded code for it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void NotifyWrite(ulong physPage)
    {
        if (IsCode(physPage))
        {
            Invalidate(physPage);
        }
    }

    /// <summary>Invalidates decoded code in [gpa, gpa+length): for DMA and loader writes.</summary>
    public void InvalidateRange(ulong gpa, ulong length)
    {
        if (length == 0)
        {
            return;
        }

        ulong last = (gpa + length - 1) >> 12;
        for (ulong p = gpa >> 12; p <= last && p < _pageCount; p++)
        {
            if (IsCode(p))
            {
                Invalidate(p);
            }
        }
    }

    private void Invalidate(ulong physPage)
    {
        Interlocked.And(ref _marks[physPage >> 6], ~(1UL << (int)(physPage & 63)));
        Interlocked.Increment(ref _generations[physPage]);
    }
}
