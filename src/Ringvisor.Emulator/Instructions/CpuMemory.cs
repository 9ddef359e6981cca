// Linear-address accesses for the interpreter: a small per-vCPU TLB in front of the page walker (Paging/), RAM via host
// pointers, the vCPU's xAPIC page, and MMIO through the machine's bus. Faults are values: every method returns false
// after recording the exception, and never writes anything when it fails (both pages of a split access are
// translated before the first byte is stored).
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Ringvisor.Emulator.Exceptions;

namespace Ringvisor.Emulator.Instructions;

public sealed unsafe partial class Cpu
{
    internal const int AccessRead = 0, AccessWrite = 1, AccessExec = 2;
    private const int TlbSize = 256;

    // Entries are indexed by kind * TlbSize + (page & 255); the tag is (linear page << 1) | user.
    private readonly ulong[] _tlbTag = new ulong[3 * TlbSize];
    private readonly nint[] _tlbHost = new nint[3 * TlbSize];
    private readonly ulong[] _tlbPhys = new ulong[3 * TlbSize];
    private long _tlbHits;
    private long _tlbMisses;
    private int _tlbEpoch;

    // Whether the last linear address computed went through SS (selects #SS over #GP for non-canonical addresses).
    private bool _stackSegment;

    internal void FlushTlb(bool all)
    {
        _ = all;
        Array.Fill(_tlbTag, ulong.MaxValue);
        _tlbEpoch++;
        _fetchPageValid = false;
    }

    internal void FlushTlbPage(ulong la)
    {
        int i = (int)((la >> 12) & (TlbSize - 1));
        for (int k = 0; k < 3; k++)
        {
            _tlbTag[k * TlbSize + i] = ulong.MaxValue;
        }

        _tlbEpoch++;
        _fetchPageValid = false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong TlbTag(ulong la, bool user) => ((la >> 12) << 1) | (user ? 1UL : 0UL);

    private bool UserAccess => _cpl == 3;

    // ---- reads -------------------------------------------------------------------------------------------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool ReadMem(ulong la, int size, out ulong value) => ReadLinear(la, size, _cpl == 3, out value);

    /// <summary>An implicit supervisor read (descriptor tables, TSS, IDT), allowed from CPL 3.</summary>
    internal bool ReadSys(ulong la, int size, out ulong value) => ReadLinear(la, size, false, out value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool ReadLinear(ulong la, int size, bool user, out ulong value)
    {
        if ((la & 0xFFF) + (ulong)size <= 0x1000)
        {
            int i = (int)((la >> 12) & (TlbSize - 1));
            if (_tlbTag[i] == TlbTag(la, user))
            {
                _tlbHits++;
                byte* p = (byte*)_tlbHost[i] + (la & 0xFFF);
                // SAFETY: the entry maps a whole 4 KiB RAM page and the access stays inside it (checked above).
                value = size switch
                {
                    1 => *p,
                    2 => Unsafe.ReadUnaligned<ushort>(p),
                    4 => Unsafe.ReadUnaligned<uint>(p),
                    _ => Unsafe.ReadUnaligned<ulong>(p),
                };
                return true;
            }
        }

        return ReadSlow(la, size, user, out value);
    }

    private bool ReadSlow(ulong la, int size, bool user, out ulong value)
    {
        value = 0;
        Span<byte> buf = stackalloc byte[8];
        if (!ReadBytes(la, buf[..size], user))
        {
            return false;
        }

        value = BinaryPrimitives.ReadUInt64LittleEndian(buf);
        return true;
    }

    /// <summary>Reads any number of bytes at a linear address (page by page).</summary>
    internal bool ReadBytes(ulong la, Span<byte> data, bool user)
    {
        int done = 0;
        while (done < data.Length)
        {
            ulong a = AddressWrap(la + (ulong)done);
            int chunk = (int)Math.Min((ulong)(data.Length - done), 0x1000 - (a & 0xFFF));
            if (!Translate(a, AccessRead, user, out ulong pa, out nint host))
            {
                return false;
            }

            if (host != 0)
            {
                // SAFETY: host maps the whole translated RAM page; chunk stays inside it.
                new ReadOnlySpan<byte>((byte*)host + (pa & 0xFFF), chunk).CopyTo(data.Slice(done, chunk));
            }
            else
            {
                PhysReadDevice(pa, data.Slice(done, chunk));
            }

            done += chunk;
        }

        return true;
    }

    // ---- writes ------------------------------------------------------------------------------------------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool WriteMem(ulong la, int size, ulong value) => WriteLinear(la, size, _cpl == 3, value);

    internal bool WriteSys(ulong la, int size, ulong value) => WriteLinear(la, size, false, value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool WriteLinear(ulong la, int size, bool user, ulong value)
    {
        if ((la & 0xFFF) + (ulong)size <= 0x1000)
        {
            int i = TlbSize + (int)((la >> 12) & (TlbSize - 1));
            if (_tlbTag[i] == TlbTag(la, user))
            {
                _tlbHits++;
                _host.Code.NotifyWrite(_tlbPhys[i]);
                byte* p = (byte*)_tlbHost[i] + (la & 0xFFF);
                // SAFETY: the entry maps a whole writable 4 KiB RAM page and the access stays inside it.
                switch (size)
                {
                    case 1: *p = (byte)value; break;
                    case 2: Unsafe.WriteUnaligned(p, (ushort)value); break;
                    case 4: Unsafe.WriteUnaligned(p, (uint)value); break;
                    default: Unsafe.WriteUnaligned(p, value); break;
                }

                return true;
            }
        }

        Span<byte> buf = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(buf, value);
        return WriteBytes(la, buf[..size], user);
    }

    /// <summary>Writes bytes at a linear address; all pages are translated before anything is stored.</summary>
    internal bool WriteBytes(ulong la, ReadOnlySpan<byte> data, bool user)
    {
        // Translate every page first so a fault on a later page leaves memory untouched (SDM: faults are precise).
        ulong firstPage = la >> 12;
        ulong lastPage = AddressWrap(la + (ulong)data.Length - 1) >> 12;
        if (lastPage != firstPage && data.Length <= 0x1000)
        {
            // In address order, and the second page at its first byte: that is the CR2 a fault there reports (the
            // real CPU does so, as the KVM differential tests show).
            if (!Translate(la, AccessWrite, user, out _, out _) || !Translate(lastPage << 12, AccessWrite, user, out _, out _))
            {
                return false;
            }
        }

        int done = 0;
        while (done < data.Length)
        {
            ulong a = AddressWrap(la + (ulong)done);
            int chunk = (int)Math.Min((ulong)(data.Length - done), 0x1000 - (a & 0xFFF));
            if (!Translate(a, AccessWrite, user, out ulong pa, out nint host))
            {
                return false;
            }

            if (host != 0)
            {
                _host.Code.NotifyWrite(pa >> 12);
                // SAFETY: host maps the whole translated RAM page; chunk stays inside it.
                data.Slice(done, chunk).CopyTo(new Span<byte>((byte*)host + (pa & 0xFFF), chunk));
            }
            else
            {
                PhysWriteDevice(pa, data.Slice(done, chunk));
            }

            done += chunk;
        }

        return true;
    }

    /// <summary>In non-64-bit modes linear addresses wrap at 4 GiB.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong AddressWrap(ulong la) => _longMode ? la : (uint)la;

    // ---- physical devices --------------------------------------------------------------------------------------

    private bool IsApicPage(ulong pa) => _apic?.MmioBase is ulong b && (pa & ~0xFFFUL) == (b & ~0xFFFUL);

    internal void PhysReadDevice(ulong pa, Span<byte> data)
    {
        if (IsApicPage(pa))
        {
            _apic!.Read(pa & 0xFFF, data);
            return;
        }

        _stats.Mmio();
        if (!_host.Mmio.Read(pa, data))
        {
            // Split the access per byte so each device sees only its own window (bus rule for straddling accesses).
            if (data.Length > 1 && _host.Mmio.Find(pa, 1) is not null)
            {
                for (int k = 0; k < data.Length; k++)
                {
                    _host.Mmio.Read(pa + (ulong)k, data.Slice(k, 1));
                }
            }
        }
    }

    internal void PhysWriteDevice(ulong pa, ReadOnlySpan<byte> data)
    {
        if (IsApicPage(pa))
        {
            _apic!.Write(pa & 0xFFF, data);
            return;
        }

        _stats.Mmio();
        _ = _host.Mmio.Write(pa, data);
    }

    /// <summary>A host pointer for [pa, pa+length) when it is ordinary RAM (not the APIC page), else 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal nint PhysHost(ulong pa, ulong length) => IsApicPage(pa) ? 0 : _host.Memory.GetHostPointer(pa, length);

    // ---- translation -------------------------------------------------------------------------------------------

    /// <summary>
    /// Translates a linear address for one access kind, raising #PF/#GP as a value on failure. On success returns
    /// the physical address and, for RAM, the host pointer of the page (and installs it in the TLB).
    /// </summary>
    internal bool Translate(ulong la, int kind, bool user, out ulong pa, out nint pageHost)
    {
        int i = kind * TlbSize + (int)((la >> 12) & (TlbSize - 1));
        if (_tlbTag[i] == TlbTag(la, user))
        {
            _tlbHits++;
            pa = (_tlbPhys[i] << 12) | (la & 0xFFF);
            pageHost = _tlbHost[i];
            return true;
        }

        _tlbMisses++;
        pageHost = 0;
        if (_longMode && !IsCanonical(la))
        {
            // A non-canonical address through SS is #SS(0), any other #GP(0) (SDM Vol. 3A §6.15, interrupts 12/13).
            pa = 0;
            return Fault(_stackSegment ? ExceptionVector.StackFault : ExceptionVector.GeneralProtection, 0);
        }

        uint err = Paging.PageWalker.Walk(this, la, kind, user, out pa);
        if (err != 0)
        {
            Cr2 = la;
            // Bit 31 marks "fault" in the walker's result; the SDM error code is the low bits.
            return Fault(ExceptionVector.PageFault, err & 0x7FFF_FFFF);
        }

        nint host = PhysHost(pa & ~0xFFFUL, 0x1000);
        if (host != 0)
        {
            ulong ppage = pa >> 12;
            _tlbTag[i] = TlbTag(la, user);
            _tlbHost[i] = host;
            _tlbPhys[i] = ppage;
            if (kind == AccessWrite)
            {
                _host.Memory.MarkDirty(pa & ~0xFFFUL, 0x1000);
            }

            pageHost = host;
        }

        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsCanonical(ulong la) => (ulong)(((long)la << 16) >> 16) == la;

    internal bool PagingEnabled => (Cr0 & Cr0Pg) != 0;

    /// <summary>Guest-physical reads/writes for the walker (page-table entries): RAM only.</summary>
    internal nint PhysRam(ulong pa, int size) => _host.Memory.GetHostPointer(pa, (ulong)size);
}
