// Per-page dirty bits for writes made by the VMM (devices, loaders) rather than by vCPUs.
// KVM tracks vCPU writes itself (KVM_GET_DIRTY_LOG); the bt engine marks its stores here too.
namespace Ringvisor.Core.Memory;

public sealed class DirtyBitmap
{
    private readonly ulong[] _bits;

    public DirtyBitmap(ulong pageCount)
    {
        PageCount = pageCount;
        _bits = new ulong[(pageCount + 63) / 64];
    }

    public ulong PageCount { get; }

    public void Mark(ulong page)
    {
        if (page >= PageCount)
        {
            return;
        }

        ulong mask = 1UL << (int)(page & 63);
        ref ulong word = ref _bits[page >> 6];
        if ((Volatile.Read(ref word) & mask) == 0)
        {
            Interlocked.Or(ref word, mask);
        }
    }

    public void MarkRange(ulong firstPage, ulong count)
    {
        for (ulong p = firstPage; p < firstPage + count; p++)
        {
            Mark(p);
        }
    }

    public bool IsDirty(ulong page) => page < PageCount && (Volatile.Read(ref _bits[page >> 6]) & (1UL << (int)(page & 63))) != 0;

    /// <summary>Returns the dirty pages and clears them atomically, word by word.</summary>
    public List<ulong> TakeDirtyPages()
    {
        var pages = new List<ulong>();
        for (int i = 0; i < _bits.Length; i++)
        {
            ulong w = Interlocked.Exchange(ref _bits[i], 0);
            while (w != 0)
            {
                int b = System.Numerics.BitOperations.TrailingZeroCount(w);
                pages.Add(((ulong)i << 6) + (ulong)b);
                w &= w - 1;
            }
        }

        return pages;
    }
}
