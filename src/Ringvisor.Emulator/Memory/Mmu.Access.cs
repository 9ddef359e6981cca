// Linear-address accesses: the inlined TLB fast paths and their slow paths (page-crossing, MMIO, code pages).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Ringvisor.Emulator.Memory;

public sealed unsafe partial class Mmu
{
    // ---------------------------------------------------------------- data: current privilege

    /// <summary>
    /// Reads sizeof(<typeparamref name="T"/>) bytes (byte, ushort, uint, ulong, UInt128, Vector128, …) at
    /// <paramref name="linear"/> with the current privilege (CPL, RFLAGS.AC). False on a fault (<see cref="LastFault"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryRead<T>(ulong linear, out T value)
        where T : unmanaged
    {
        ref TlbEntry e = ref EntryAt(_currentBase, linear);
        if (e.ReadTag == (linear & PageMask) && (linear & PageOffsetMask) <= (ulong)(PageSize - sizeof(T)))
        {
            _tlbHits++;

            // SAFETY: the tag matches only for a RAM page whose host mapping starts at LinearPage + HostAddend, and
            // the offset check keeps all sizeof(T) bytes inside that page.
            value = Unsafe.ReadUnaligned<T>((void*)(e.HostAddend + (nint)linear));
            return true;
        }

        return ReadSlow(linear, out value, _class);
    }

    /// <summary>Writes <paramref name="value"/> at <paramref name="linear"/> with the current privilege. False on a fault; then nothing was written.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryWrite<T>(ulong linear, T value)
        where T : unmanaged
    {
        ref TlbEntry e = ref EntryAt(_currentBase, linear);
        if (e.WriteTag == (linear & PageMask) && (linear & PageOffsetMask) <= (ulong)(PageSize - sizeof(T)))
        {
            _tlbHits++;

            // SAFETY: as in TryRead; a fast write tag exists only for RAM pages that hold no decoded code.
            Unsafe.WriteUnaligned((void*)(e.HostAddend + (nint)linear), value);
            return true;
        }

        return WriteSlow(linear, value, _class);
    }

    /// <summary>
    /// Reads a 1, 2, 4 or 8-byte operand zero-extended into <paramref name="value"/>, with the current privilege: the
    /// form an interpreter with run-time operand sizes wants. Other sizes take the slow path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryReadSized(ulong linear, int size, out ulong value)
    {
        ref TlbEntry e = ref EntryAt(_currentBase, linear);
        if (e.ReadTag == (linear & PageMask) && (linear & PageOffsetMask) <= (ulong)(PageSize - size))
        {
            // SAFETY: the tag matches only for a RAM page mapped at LinearPage + HostAddend, and the offset check keeps
            // all size bytes inside that page; each case reads exactly size bytes.
            byte* p = (byte*)(e.HostAddend + (nint)linear);
            switch (size)
            {
                case 1: value = *p; _tlbHits++; return true;
                case 2: value = Unsafe.ReadUnaligned<ushort>(p); _tlbHits++; return true;
                case 4: value = Unsafe.ReadUnaligned<uint>(p); _tlbHits++; return true;
                case 8: value = Unsafe.ReadUnaligned<ulong>(p); _tlbHits++; return true;
            }
        }

        return ReadSizedSlow(linear, size, out value, _class);
    }

    /// <summary>Whether a write with the current privilege to the page of <paramref name="linear"/> would take the TLB's
    /// fast path now: a writable RAM page holding no decoded code, whose dirty bit is already set (so a write cannot
    /// fault, touch page tables, or change code).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool CanWriteFast(ulong linear) => EntryAt(_currentBase, linear).WriteTag == (linear & PageMask);

    /// <summary>Writes the low <paramref name="size"/> (1, 2, 4 or 8) bytes of <paramref name="value"/> with the current privilege.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryWriteSized(ulong linear, int size, ulong value)
    {
        ref TlbEntry e = ref EntryAt(_currentBase, linear);
        if (e.WriteTag == (linear & PageMask) && (linear & PageOffsetMask) <= (ulong)(PageSize - size))
        {
            // SAFETY: as in TryReadSized; a fast write tag exists only for RAM pages that hold no decoded code.
            byte* p = (byte*)(e.HostAddend + (nint)linear);
            switch (size)
            {
                case 1: *p = (byte)value; _tlbHits++; return true;
                case 2: Unsafe.WriteUnaligned(p, (ushort)value); _tlbHits++; return true;
                case 4: Unsafe.WriteUnaligned(p, (uint)value); _tlbHits++; return true;
                case 8: Unsafe.WriteUnaligned(p, value); _tlbHits++; return true;
            }
        }

        return WriteSizedSlow(linear, size, value, _class);
    }

    /// <summary>Reads any number of bytes (10-byte x87 operands, FXSAVE images, descriptor pairs); all pages are translated first.</summary>
    public bool TryReadBytes(ulong linear, Span<byte> destination) => ReadBytesSlow(linear, destination, _class, MemoryAccessKind.Read);

    /// <summary>Writes any number of bytes; every page is translated before the first byte is stored, so a fault leaves memory unchanged.</summary>
    public bool TryWriteBytes(ulong linear, ReadOnlySpan<byte> source) => WriteBytesSlow(linear, source, _class);

    // ---------------------------------------------------------------- data: implicit supervisor

    /// <summary>
    /// An implicit supervisor-mode read (SDM Vol. 3A §4.6: GDT/LDT/IDT/TSS accesses, even at CPL 3): supervisor rights,
    /// SMAP enforced regardless of RFLAGS.AC, #PF error code with U/S = 0.
    /// </summary>
    public bool TryReadSystem<T>(ulong linear, out T value)
        where T : unmanaged => ReadSlow(linear, out value, ClassSupervisor);

    /// <summary>An implicit supervisor-mode write (TSS busy bit, descriptor accessed bit, task-switch state).</summary>
    public bool TryWriteSystem<T>(ulong linear, T value)
        where T : unmanaged => WriteSlow(linear, value, ClassSupervisor);

    /// <summary>Implicit supervisor-mode form of <see cref="TryReadSized"/>.</summary>
    public bool TryReadSystemSized(ulong linear, int size, out ulong value) => ReadSizedSlow(linear, size, out value, ClassSupervisor);

    /// <summary>Implicit supervisor-mode form of <see cref="TryWriteSized"/>.</summary>
    public bool TryWriteSystemSized(ulong linear, int size, ulong value) => WriteSizedSlow(linear, size, value, ClassSupervisor);

    public bool TryReadSystemBytes(ulong linear, Span<byte> destination) => ReadBytesSlow(linear, destination, ClassSupervisor, MemoryAccessKind.Read);

    public bool TryWriteSystemBytes(ulong linear, ReadOnlySpan<byte> source) => WriteBytesSlow(linear, source, ClassSupervisor);

    // ---------------------------------------------------------------- translation

    /// <summary>
    /// Translates <paramref name="linear"/> for <paramref name="kind"/> with the current privilege, or as an implicit
    /// supervisor access. Sets A (and D for writes) and fills the TLB like a real access. False on a fault.
    /// </summary>
    public bool TryTranslate(ulong linear, MemoryAccessKind kind, out ulong physical, bool implicitSupervisor = false)
    {
        return TranslatePage(linear & _linearMask, kind, implicitSupervisor ? ClassSupervisor : _class, out physical, out _);
    }

    // ---------------------------------------------------------------- instruction fetch

    /// <summary>
    /// The guest-physical page number the current class's TLB holds for instruction fetches from
    /// <paramref name="linear"/>'s page, or <see cref="ulong.MaxValue"/> when it holds none (no walk, no counters).
    /// Lets a cache of fetch translations that outlived an <see cref="Epoch"/> change (a CR3 load drops the
    /// non-global entries and bumps the epoch for all) check an entry against the TLB instead of translating again:
    /// a hit is what <see cref="TryTranslateFetch"/> would return.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong CachedFetchPage(ulong linear)
    {
        ref TlbEntry e = ref EntryAt(_currentBase, linear);
        return e.ExecTag == (linear & PageMask) ? e.PhysicalPage >> 12 : ulong.MaxValue;
    }

    /// <summary>
    /// Translates the page holding <paramref name="linear"/> for instruction fetch with the current privilege. The
    /// decoder cache keys decoded instructions by <see cref="FetchPage.PhysicalPage"/> and reads bytes through
    /// <see cref="FetchPage.HostPage"/> (0 for MMIO: use <see cref="TryFetch"/> and do not cache).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryTranslateFetch(ulong linear, out FetchPage page)
    {
        ref TlbEntry e = ref EntryAt(_currentBase, linear);
        ulong linearPage = linear & PageMask;
        if (e.ExecTag == linearPage)
        {
            _tlbHits++;
            page = new FetchPage(linearPage, e.PhysicalPage, e.HostAddend + (nint)linearPage);
            return true;
        }

        return TranslateFetchSlow(linear, out page);
    }

    /// <summary>
    /// Fetches instruction bytes (any length, across pages, from RAM or MMIO) with execute permission. Every page the
    /// span touches must be executable: fetch only as many bytes as the decoder needs.
    /// </summary>
    public bool TryFetch(ulong linear, Span<byte> destination) => ReadBytesSlow(linear, destination, _class, MemoryAccessKind.Execute);

    private bool TranslateFetchSlow(ulong linear, out FetchPage page)
    {
        linear &= _linearMask;
        if (!TranslatePage(linear, MemoryAccessKind.Execute, _class, out ulong physical, out nint host))
        {
            page = default;
            return false;
        }

        ulong offset = linear & PageOffsetMask;
        page = new FetchPage(linear & PageMask, physical & PageMask, host == 0 ? 0 : host - (nint)offset);
        return true;
    }

    // ---------------------------------------------------------------- string and atomic helpers

    /// <summary>
    /// For string-instruction fast paths: translates [linear, linear+length) for <paramref name="kind"/> and returns a
    /// span straight over guest RAM when the range lies in one RAM page (and, for writes, the page holds no decoded
    /// code; the page is marked dirty). Otherwise <see cref="HostSpanResult.NotDirect"/> (element-wise path) or
    /// <see cref="HostSpanResult.Fault"/>.
    /// </summary>
    public HostSpanResult TryGetHostSpan(ulong linear, int length, MemoryAccessKind kind, out Span<byte> span)
    {
        span = default;
        linear &= _linearMask;
        if (length <= 0 || length > PageSize - (int)(linear & PageOffsetMask)) // written to avoid int overflow
        {
            return HostSpanResult.NotDirect;
        }

        if (!TranslatePage(linear, kind, _class, out ulong physical, out nint host))
        {
            return HostSpanResult.Fault;
        }

        if (host == 0)
        {
            return HostSpanResult.NotDirect;
        }

        if (kind == MemoryAccessKind.Write)
        {
            if (_code.IsCodePage(physical))
            {
                return HostSpanResult.NotDirect;
            }

            _memory.Dirty.Mark(physical >> 12);
        }

        // SAFETY: host points into a RAM page and [offset, offset+length) was checked to stay inside it.
        span = new Span<byte>((void*)host, length);
        return HostSpanResult.Ok;
    }

    /// <summary>
    /// For LOCK-prefixed read-modify-writes of <paramref name="size"/> bytes: checks write access to every byte (a
    /// locked RMW is a write for paging, setting D), then returns a host pointer when the operand is naturally
    /// aligned RAM of 1, 2, 4 or 8 bytes outside any code page (use Interlocked on it). Otherwise
    /// <see cref="AtomicAccess.NeedsLock"/>: do TryRead then TryWrite under <see cref="MemorySystem.AtomicFallbackLock"/>.
    /// </summary>
    public AtomicAccess TryGetAtomic(ulong linear, int size, out nint host)
    {
        bool natural = size is 1 or 2 or 4 or 8 && (linear & (ulong)(size - 1)) == 0;
        ref TlbEntry e = ref EntryAt(_currentBase, linear);
        if (natural && e.WriteTag == (linear & PageMask))
        {
            _tlbHits++;
            host = e.HostAddend + (nint)linear;
            return AtomicAccess.Direct;
        }

        host = 0;
        linear &= _linearMask;
        if (size <= 0 || size > PageSize)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "atomic operand size must be 1..4096 bytes");
        }

        if (!TranslatePage(linear, MemoryAccessKind.Write, _class, out ulong physical, out nint first))
        {
            return AtomicAccess.Fault;
        }

        int offset = (int)(linear & PageOffsetMask);
        if (size > PageSize - offset)
        {
            ulong next = ((linear & PageMask) + PageSize) & _linearMask;
            return TranslatePage(next, MemoryAccessKind.Write, _class, out _, out _) ? AtomicAccess.NeedsLock : AtomicAccess.Fault;
        }

        if (natural && first != 0 && !_code.IsCodePage(physical))
        {
            host = first;
            return AtomicAccess.Direct;
        }

        return AtomicAccess.NeedsLock;
    }

    // ---------------------------------------------------------------- slow paths

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool ReadSlow<T>(ulong linear, out T value, int cls)
        where T : unmanaged
    {
        T tmp = default;
        bool ok = ReadBytesSlow(linear, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref tmp, 1)), cls, MemoryAccessKind.Read);
        value = tmp;
        return ok;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool WriteSlow<T>(ulong linear, T value, int cls)
        where T : unmanaged
    {
        return WriteBytesSlow(linear, MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(ref value, 1)), cls);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool ReadSizedSlow(ulong linear, int size, out ulong value, int cls)
    {
        if ((uint)size > 8)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "sized accesses are 0..8 bytes");
        }

        ulong tmp = 0;
        bool ok = ReadBytesSlow(linear, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref tmp, 1))[..size], cls, MemoryAccessKind.Read);
        value = ok ? tmp : 0;
        return ok;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool WriteSizedSlow(ulong linear, int size, ulong value, int cls)
    {
        if ((uint)size > 8)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "sized accesses are 0..8 bytes");
        }

        return WriteBytesSlow(linear, MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(ref value, 1))[..size], cls);
    }

    private bool ReadBytesSlow(ulong linear, Span<byte> destination, int cls, MemoryAccessKind kind)
    {
        if (destination.IsEmpty)
        {
            return true;
        }

        linear &= _linearMask;
        int offset = (int)(linear & PageOffsetMask);
        if (destination.Length <= PageSize - offset)
        {
            if (!TranslatePage(linear, kind, cls, out ulong physical, out nint host))
            {
                return false;
            }

            ReadPart(physical, host, destination);
            return true;
        }

        int pages = (int)(((long)offset + destination.Length + PageSize - 1) / PageSize);
        Span<ulong> physicals = pages <= 16 ? stackalloc ulong[16] : new ulong[pages];
        Span<nint> hosts = pages <= 16 ? stackalloc nint[16] : new nint[pages];

        // Translate every page before touching any byte: a fault on a later page must not leave side effects (MMIO).
        ulong la = linear;
        for (int i = 0; i < pages; i++)
        {
            if (!TranslatePage(la, kind, cls, out physicals[i], out hosts[i]))
            {
                return false;
            }

            la = ((la & PageMask) + PageSize) & _linearMask;
        }

        int pos = 0;
        for (int i = 0; i < pages; i++)
        {
            int n = Math.Min(destination.Length - pos, PageSize - (int)(physicals[i] & PageOffsetMask));
            ReadPart(physicals[i], hosts[i], destination.Slice(pos, n));
            pos += n;
        }

        return true;
    }

    private bool WriteBytesSlow(ulong linear, ReadOnlySpan<byte> source, int cls)
    {
        if (source.IsEmpty)
        {
            return true;
        }

        linear &= _linearMask;
        int offset = (int)(linear & PageOffsetMask);
        if (source.Length <= PageSize - offset)
        {
            if (!TranslatePage(linear, MemoryAccessKind.Write, cls, out ulong physical, out nint host))
            {
                return false;
            }

            WritePart(physical, host, source);
            return true;
        }

        int pages = (int)(((long)offset + source.Length + PageSize - 1) / PageSize);
        Span<ulong> physicals = pages <= 16 ? stackalloc ulong[16] : new ulong[pages];
        Span<nint> hosts = pages <= 16 ? stackalloc nint[16] : new nint[pages];

        // Every page is translated (and must be writable) before the first byte is stored (SDM Vol. 3A §4.7 note on
        // accesses that cross pages: a #PF leaves the destination unchanged).
        ulong la = linear;
        for (int i = 0; i < pages; i++)
        {
            if (!TranslatePage(la, MemoryAccessKind.Write, cls, out physicals[i], out hosts[i]))
            {
                return false;
            }

            la = ((la & PageMask) + PageSize) & _linearMask;
        }

        int pos = 0;
        for (int i = 0; i < pages; i++)
        {
            int n = Math.Min(source.Length - pos, PageSize - (int)(physicals[i] & PageOffsetMask));
            WritePart(physicals[i], hosts[i], source.Slice(pos, n));
            pos += n;
        }

        return true;
    }

    /// <summary>Reads within one page whose translation is known: RAM through the host pointer, otherwise the physical dispatch.</summary>
    private void ReadPart(ulong physical, nint host, Span<byte> destination)
    {
        if (host != 0)
        {
            // SAFETY: host is inside a RAM page and the caller keeps the span inside that page.
            new ReadOnlySpan<byte>((void*)host, destination.Length).CopyTo(destination);
            return;
        }

        ReadDevice(physical, destination);
    }

    private void WritePart(ulong physical, nint host, ReadOnlySpan<byte> source)
    {
        if (host != 0)
        {
            // SAFETY: host is inside a RAM page and the caller keeps the span inside that page.
            source.CopyTo(new Span<byte>((void*)host, source.Length));
            _memory.Dirty.Mark(physical >> 12);
            _code.NotifyWrite(physical);
            return;
        }

        WriteDevice(physical, source);
    }
}
