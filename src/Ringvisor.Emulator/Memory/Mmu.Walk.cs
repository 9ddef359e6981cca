// Page-table walks (Intel SDM Vol. 3A §4.3 32-bit, §4.4 PAE, §4.5 4-level paging), access rights (§4.6),
// accessed/dirty flags (§4.8) and TLB fills.
using System.Runtime.CompilerServices;

namespace Ringvisor.Emulator.Memory;

public sealed unsafe partial class Mmu
{
    // Paging-structure entry bits (SDM Vol. 3A Tables 4-4 .. 4-20).
    private const ulong PtePresent = 1UL << 0;
    private const ulong PteWritable = 1UL << 1;
    private const ulong PteUser = 1UL << 2;
    private const ulong PteAccessed = 1UL << 5;
    private const ulong PteDirty = 1UL << 6;
    private const ulong PtePageSize = 1UL << 7;
    private const ulong PteGlobal = 1UL << 8;
    private const ulong PteNoExecute = 1UL << 63;

    /// <summary>Bits (MAXPHYADDR-1):12: the frame address in PAE and 4-level entries.</summary>
    private const ulong PhysicalFrameMask = ((1UL << PhysicalAddressBits) - 1) & PageMask;

    /// <summary>PAE PDPTE reserved bits: 2:1, 8:5, 63:MAXPHYADDR (SDM Vol. 3A Table 4-8); checked at CR3 load.</summary>
    private const ulong PdpteReservedMask = 0x1E6UL | (ulong.MaxValue << PhysicalAddressBits);

    /// <summary>PAE PDE/PTE reserved bits 62:MAXPHYADDR (Tables 4-9..4-11); bit 63 too when EFER.NXE = 0.</summary>
    private const ulong PaeReservedMask = (ulong.MaxValue << PhysicalAddressBits) & ~PteNoExecute;

    /// <summary>4-level reserved bits 51:MAXPHYADDR (Tables 4-14..4-19); bits 62:52 are ignored.</summary>
    private const ulong LongReservedMask = ((1UL << 52) - 1) & (ulong.MaxValue << PhysicalAddressBits);

    /// <summary>Reserved bits 20:13 of an entry mapping a 2 MiB page (PAT is bit 12).</summary>
    private const ulong Large2MReservedMask = 0x1F_E000;

    /// <summary>Reserved bits 29:13 of an entry mapping a 1 GiB page.</summary>
    private const ulong Large1GReservedMask = 0x3FFF_E000;

    /// <summary>32-bit paging, 4 MiB PDE with PSE-36: bits 20:13 hold address bits 39:32, bit 21 is reserved for MAXPHYADDR 40 (Table 4-4).</summary>
    private const uint Pde4MReservedMask = 1u << 21;

    private const int MaxWalkLevels = 4;

    private readonly nint[] _walkHost = new nint[MaxWalkLevels];
    private readonly ulong[] _walkValue = new ulong[MaxWalkLevels];
    private readonly ulong[] _walkPhysical = new ulong[MaxWalkLevels];
    private int _walkCount;
    private bool _walk32;

    /// <summary>Whether PDPTEs with PS = 1 map 1 GiB pages (CPUID 80000001h EDX[26]); otherwise PS is reserved there.</summary>
    public bool Supports1GbPages { get; set; } = true;

    private enum WalkStatus
    {
        Ok,
        NotPresent,
        Reserved,
        NonCanonical,
    }

    private struct WalkResult
    {
        public ulong PhysicalPage;
        public int PageShift;
        public bool User;
        public bool Writable;
        public bool NoExecute;
        public bool Global;
        public bool Dirty;
    }

    /// <summary>
    /// Translates one byte's page for an access of <paramref name="kind"/> in privilege class <paramref name="cls"/>:
    /// TLB (fast or slow tag), else a walk and a fill. <paramref name="linear"/> is already masked to the mode's width.
    /// </summary>
    private bool TranslatePage(ulong linear, MemoryAccessKind kind, int cls, out ulong physical, out nint host)
    {
        ref TlbEntry e = ref EntryAt(cls * TlbSets, linear);
        ulong page = linear & PageMask;
        ulong tag = kind switch
        {
            MemoryAccessKind.Read => e.ReadTag,
            MemoryAccessKind.Write => e.WriteTag,
            _ => e.ExecTag,
        };
        if ((tag & ~TagSlow) == page)
        {
            _tlbHits++;
            physical = e.PhysicalPage | (linear & PageOffsetMask);
            host = (e.Flags & EntryRam) != 0 ? e.HostAddend + (nint)linear : 0;
            if (tag != page && kind == MemoryAccessKind.Write && host != 0 && !_code.IsCodePage(physical))
            {
                // The page stopped being code since this entry was filled: stores may use the fast path again.
                e.WriteTag = page;
            }

            return true;
        }

        _tlbMisses++;
        return WalkAndFill(linear, kind, cls, out physical, out host);
    }

    private bool WalkAndFill(ulong linear, MemoryAccessKind kind, int cls, out ulong physical, out nint host)
    {
        var w = default(WalkResult);
        for (int attempt = 0; ; attempt++)
        {
            _pageWalks++;
            var status = Walk(linear, ref w);
            if (status != WalkStatus.Ok)
            {
                physical = 0;
                host = 0;
                if (status == WalkStatus.NonCanonical)
                {
                    _pageFaults++;
                    _lastFault = new MmuFault(MmuFaultKind.NonCanonical, PageFaultErrorCode.None, linear);
                    return false;
                }

                return PageFault(linear, kind, cls, status == WalkStatus.Reserved ? PageFaultErrorCode.Present | PageFaultErrorCode.ReservedBit : PageFaultErrorCode.None);
            }

            if (!Allowed(kind, cls, w.User, w.Writable, w.NoExecute))
            {
                physical = 0;
                host = 0;
                return PageFault(linear, kind, cls, PageFaultErrorCode.Present);
            }

            // SDM Vol. 3A §4.8: A in every entry used, D in the leaf for a write, with locked read-modify-writes. If
            // another CPU changed an entry between our read and our update, walk again with the new value.
            if (SetAccessedDirty(kind == MemoryAccessKind.Write) || attempt >= 8)
            {
                break;
            }
        }

        Fill(linear, kind, cls, in w, out physical, out host);
        return true;
    }

    private bool PageFault(ulong linear, MemoryAccessKind kind, int cls, PageFaultErrorCode code)
    {
        if (kind == MemoryAccessKind.Write)
        {
            code |= PageFaultErrorCode.Write;
        }

        if (cls == ClassUser)
        {
            code |= PageFaultErrorCode.User;
        }

        // SDM Vol. 3A §4.7: I/D is reported only with SMEP, or with PAE/4-level paging and EFER.NXE.
        if (kind == MemoryAccessKind.Execute && (_smep || _nxe))
        {
            code |= PageFaultErrorCode.InstructionFetch;
        }

        _pageFaults++;
        _lastFault = new MmuFault(MmuFaultKind.PageFault, code, linear);
        return false;
    }

    /// <summary>SDM Vol. 3A §4.6.1: may class <paramref name="cls"/> perform <paramref name="kind"/> on a page with these effective rights?</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Allowed(MemoryAccessKind kind, int cls, bool user, bool writable, bool noExecute)
    {
        if (cls == ClassUser)
        {
            return kind switch
            {
                MemoryAccessKind.Read => user,
                MemoryAccessKind.Write => user && writable,
                _ => user && !noExecute,
            };
        }

        // Supervisor data accesses to user pages are blocked by SMAP unless explicit with RFLAGS.AC = 1 (the AC class).
        bool dataOk = !user || !_smap || cls == ClassSupervisorAc;
        return kind switch
        {
            MemoryAccessKind.Read => dataOk,
            MemoryAccessKind.Write => dataOk && (writable || !_wp),
            _ => !noExecute && (!user || !_smep),
        };
    }

    private WalkStatus Walk(ulong linear, ref WalkResult w)
    {
        w = default;
        w.User = true;
        w.Writable = true;
        _walkCount = 0;
        switch (_mode)
        {
            case PagingMode.None:
                w.PhysicalPage = linear & PageMask & 0xFFFF_FFFF;
                w.PageShift = 12;
                w.Dirty = true;
                return WalkStatus.Ok;
            case PagingMode.TwoLevel:
                return Walk32(linear, ref w);
            case PagingMode.Pae:
                return WalkPae(linear, ref w);
            default:
                return Walk64(linear, ref w);
        }
    }

    private WalkStatus Walk32(ulong linear, ref WalkResult w)
    {
        _walk32 = true;
        ulong pdeAddress = (_state.Cr3 & 0xFFFF_F000) | ((linear >> 22 & 0x3FF) << 2);
        uint pde = ReadEntry32(pdeAddress, out nint pdeHost);
        if ((pde & PtePresent) == 0)
        {
            return WalkStatus.NotPresent;
        }

        Record(pdeAddress, pdeHost, pde);
        Accumulate(ref w, pde);
        if ((pde & PtePageSize) != 0 && _pse)
        {
            if ((pde & Pde4MReservedMask) != 0)
            {
                return WalkStatus.Reserved;
            }

            ulong frame = (pde & 0xFFC0_0000UL) | ((ulong)((pde >> 13) & 0xFF) << 32);
            return Leaf(ref w, pde, frame | (linear & 0x003F_F000), 22);
        }

        ulong pteAddress = (pde & 0xFFFF_F000UL) | ((linear >> 12 & 0x3FF) << 2);
        uint pte = ReadEntry32(pteAddress, out nint pteHost);
        if ((pte & PtePresent) == 0)
        {
            return WalkStatus.NotPresent;
        }

        Record(pteAddress, pteHost, pte);
        Accumulate(ref w, pte);
        return Leaf(ref w, pte, pte & 0xFFFF_F000UL, 12);
    }

    private WalkStatus WalkPae(ulong linear, ref WalkResult w)
    {
        _walk32 = false;
        ulong pdpte = _pdpte[(int)(linear >> 30 & 3)];
        if ((pdpte & PtePresent) == 0)
        {
            return WalkStatus.NotPresent;
        }

        // PAE PDPTEs are registers loaded with CR3: their reserved bits were checked then, and they have no A flag,
        // no R/W and no U/S (SDM Vol. 3A §4.4.1).
        ulong reserved = PaeReservedMask | (_nxe ? 0 : PteNoExecute);
        return WalkDirectoryAndTable(linear, pdpte, reserved, ref w);
    }

    private WalkStatus Walk64(ulong linear, ref WalkResult w)
    {
        _walk32 = false;

        // SDM Vol. 3A §3.3.7.1: bits 63:47 must all equal bit 47.
        if ((ulong)((long)(linear << 16) >> 16) != linear)
        {
            return WalkStatus.NonCanonical;
        }

        ulong reserved = LongReservedMask | (_nxe ? 0 : PteNoExecute);

        ulong pml4eAddress = (_state.Cr3 & PhysicalFrameMask) | ((linear >> 39 & 0x1FF) << 3);
        ulong pml4e = ReadEntry64(pml4eAddress, out nint pml4eHost);
        if ((pml4e & PtePresent) == 0)
        {
            return WalkStatus.NotPresent;
        }

        // PS is reserved in a PML4E (Table 4-14).
        if ((pml4e & (reserved | PtePageSize)) != 0)
        {
            return WalkStatus.Reserved;
        }

        Record(pml4eAddress, pml4eHost, pml4e);
        Accumulate(ref w, pml4e);

        ulong pdpteAddress = (pml4e & PhysicalFrameMask) | ((linear >> 30 & 0x1FF) << 3);
        ulong pdpte = ReadEntry64(pdpteAddress, out nint pdpteHost);
        if ((pdpte & PtePresent) == 0)
        {
            return WalkStatus.NotPresent;
        }

        if ((pdpte & reserved) != 0 ||
            ((pdpte & PtePageSize) != 0 && (!Supports1GbPages || (pdpte & Large1GReservedMask) != 0)))
        {
            return WalkStatus.Reserved;
        }

        Record(pdpteAddress, pdpteHost, pdpte);
        Accumulate(ref w, pdpte);
        if ((pdpte & PtePageSize) != 0)
        {
            return Leaf(ref w, pdpte, (pdpte & PhysicalFrameMask & ~0x3FFF_FFFFUL) | (linear & 0x3FFF_F000), 30);
        }

        return WalkDirectoryAndTable(linear, pdpte, reserved, ref w);
    }

    /// <summary>
    /// The page-directory and page-table levels, identical in PAE and 4-level paging (64-bit entries, 2 MiB large
    /// pages; SDM Vol. 3A Tables 4-9/4-10 and 4-17/4-19): <paramref name="pdpte"/> points at the page directory.
    /// </summary>
    private WalkStatus WalkDirectoryAndTable(ulong linear, ulong pdpte, ulong reserved, ref WalkResult w)
    {
        ulong pdeAddress = (pdpte & PhysicalFrameMask) | ((linear >> 21 & 0x1FF) << 3);
        ulong pde = ReadEntry64(pdeAddress, out nint pdeHost);
        if ((pde & PtePresent) == 0)
        {
            return WalkStatus.NotPresent;
        }

        if ((pde & reserved) != 0 || ((pde & PtePageSize) != 0 && (pde & Large2MReservedMask) != 0))
        {
            return WalkStatus.Reserved;
        }

        Record(pdeAddress, pdeHost, pde);
        Accumulate(ref w, pde);
        if ((pde & PtePageSize) != 0)
        {
            return Leaf(ref w, pde, (pde & PhysicalFrameMask & ~0x1F_FFFFUL) | (linear & 0x1F_F000), 21);
        }

        ulong pteAddress = (pde & PhysicalFrameMask) | ((linear >> 12 & 0x1FF) << 3);
        ulong pte = ReadEntry64(pteAddress, out nint pteHost);
        if ((pte & PtePresent) == 0)
        {
            return WalkStatus.NotPresent;
        }

        if ((pte & reserved) != 0)
        {
            return WalkStatus.Reserved;
        }

        Record(pteAddress, pteHost, pte);
        Accumulate(ref w, pte);
        return Leaf(ref w, pte, pte & PhysicalFrameMask, 12);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Accumulate(ref WalkResult w, ulong entry)
    {
        // SDM Vol. 3A §4.6.1: R/W and U/S are ANDed over every level, XD is ORed.
        w.User &= (entry & PteUser) != 0;
        w.Writable &= (entry & PteWritable) != 0;
        w.NoExecute |= _nxe && (entry & PteNoExecute) != 0;
    }

    private static WalkStatus Leaf(ref WalkResult w, ulong entry, ulong physicalPage, int shift)
    {
        w.PhysicalPage = physicalPage;
        w.PageShift = shift;
        w.Global = (entry & PteGlobal) != 0;
        w.Dirty = (entry & PteDirty) != 0;
        return WalkStatus.Ok;
    }

    private void Record(ulong physical, nint host, ulong value)
    {
        _walkPhysical[_walkCount] = physical;
        _walkHost[_walkCount] = host;
        _walkValue[_walkCount] = value;
        _walkCount++;
    }

    /// <summary>Reads a paging-structure entry; one outside RAM reads as all ones, as the bus returns for nothing there.</summary>
    private ulong ReadEntry64(ulong physical, out nint host)
    {
        host = _memory.GetHostPointer(physical, 8);
        if (host == 0)
        {
            return ulong.MaxValue;
        }

        // SAFETY: GetHostPointer proved the 8 bytes are guest RAM; entries are 8-byte aligned by construction.
        return Volatile.Read(ref *(ulong*)host);
    }

    private uint ReadEntry32(ulong physical, out nint host)
    {
        host = _memory.GetHostPointer(physical, 4);
        if (host == 0)
        {
            return uint.MaxValue;
        }

        // SAFETY: GetHostPointer proved the 4 bytes are guest RAM; entries are 4-byte aligned by construction.
        return Volatile.Read(ref *(uint*)host);
    }

    /// <summary>Sets A (and D on the leaf) in the recorded entries; false when an entry changed under us.</summary>
    private bool SetAccessedDirty(bool write)
    {
        for (int i = 0; i < _walkCount; i++)
        {
            nint host = _walkHost[i];
            if (host == 0)
            {
                continue;
            }

            ulong old = _walkValue[i];
            ulong want = old | PteAccessed | (write && i == _walkCount - 1 ? PteDirty : 0);
            if (want == old)
            {
                continue;
            }

            bool swapped = _walk32
                // SAFETY: host points at a 4-byte aligned entry in guest RAM (ReadEntry32).
                ? Interlocked.CompareExchange(ref *(uint*)host, (uint)want, (uint)old) == (uint)old
                // SAFETY: host points at an 8-byte aligned entry in guest RAM (ReadEntry64).
                : Interlocked.CompareExchange(ref *(ulong*)host, want, old) == old;
            if (!swapped)
            {
                return false;
            }

            // The A/D update is a store to guest RAM: live migration must see the page-table page as dirty.
            _memory.Dirty.Mark(_walkPhysical[i] >> 12);
        }

        return true;
    }

    private void Fill(ulong linear, MemoryAccessKind kind, int cls, in WalkResult w, out ulong physical, out nint host)
    {
        ulong page = linear & PageMask;
        ulong physicalPage = w.PhysicalPage;
        bool claimed = _hook is { } hook && hook.Claims(physicalPage);
        nint hostPage = claimed ? 0 : _memory.GetHostPointer(physicalPage, PageSize);
        bool ram = hostPage != 0;
        ulong slow = ram ? 0 : TagSlow;

        int index = (cls * TlbSets) + (int)((linear >> 12) & (TlbSets - 1));
        ref TlbEntry e = ref _tlb[index];
        bool global = w.Global && _pge;
        if ((e.Flags & EntryValid) == 0 || ((e.Flags & EntryGlobal) != 0) != global)
        {
            NoteFilled(index, global);
        }

        e.ReadTag = Allowed(MemoryAccessKind.Read, cls, w.User, w.Writable, w.NoExecute) ? page | slow : TagInvalid;
        e.ExecTag = Allowed(MemoryAccessKind.Execute, cls, w.User, w.Writable, w.NoExecute) ? page | slow : TagInvalid;

        // A write entry only once D is set in the leaf, so fast stores never need to touch the paging structures.
        if ((w.Dirty || kind == MemoryAccessKind.Write) && Allowed(MemoryAccessKind.Write, cls, w.User, w.Writable, w.NoExecute))
        {
            bool code = ram && _code.IsCodePage(physicalPage);
            e.WriteTag = page | (ram && !code ? 0 : TagSlow);
            if (ram)
            {
                _memory.Dirty.Mark(physicalPage >> 12);
            }
        }
        else
        {
            e.WriteTag = TagInvalid;
        }

        e.HostAddend = ram ? hostPage - (nint)page : 0;
        e.PhysicalPage = physicalPage;
        e.LinearPage = page;
        e.PageShift = w.PageShift;
        e.Flags = EntryValid | (global ? EntryGlobal : 0) | (ram ? EntryRam : 0);

        _anyFilled = true;
        _anyGlobal |= global;
        if (w.PageShift > 12)
        {
            ulong mask = (1UL << w.PageShift) - 1;
            _largeLow = Math.Min(_largeLow, page & ~mask);
            _largeHigh = Math.Max(_largeHigh, page | mask);
        }

        physical = physicalPage | (linear & PageOffsetMask);
        host = ram ? hostPage + (nint)(linear & PageOffsetMask) : 0;
    }
}
