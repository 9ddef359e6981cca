// The bt engine's per-vCPU software MMU: linear → guest-physical translation by walking the guest's own page tables
// (Intel SDM Vol. 3A chapter 4: 32-bit, PAE and 4-level paging), with a TLB that maps linear pages straight to host
// pointers so that a guest load or store that hits costs a few instructions.
//
// TLB layout and why:
// - Three direct-mapped tables of TlbSets entries, one per privilege class: supervisor, supervisor with SMAP
//   overridden by RFLAGS.AC, and user. The class is fixed by CPL/AC/CR4.SMAP and recomputed only when they change
//   (SetPrivilege), so the fast path does no permission logic at all: an entry in a class table only carries tags for
//   the access kinds that class may perform. Implicit supervisor accesses (GDT/IDT/TSS) use the supervisor table,
//   whose rules are exactly the implicit rules.
// - Each entry has one tag per access kind (read, write, execute), as QEMU's softmmu does: the tag is the linear
//   page base when the fast path may use the host pointer, TagSlow is or-ed in when the page must go through the
//   slow path (MMIO, the LAPIC page, a write to a page holding decoded code), and TagInvalid when that kind is not
//   cached. A hit is: index by linear bits 12..20, compare one tag, check the access stays in the page, add
//   HostAddend. A write tag is only installed once the leaf's D bit is set, so every fast store is architecturally
//   allowed to skip the paging structures, and the page is marked in GuestMemory.Dirty when installed.
// - Large pages are cached as 4 KiB fragments; entries remember their large page so INVLPG drops every fragment.
//   Global pages (CR4.PGE and G) survive CR3 loads. Paging-structure caches are not modelled (every miss walks from
//   CR3 / the PDPTE registers), which the architecture permits.
// - The TLB belongs to the vCPU thread. Other threads only set request bits (RequestFlush, code-page marking) that
//   the owner services in Poll() at an instruction boundary.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Ringvisor.Core.Bus;
using Ringvisor.Core.Memory;

namespace Ringvisor.Emulator.Memory;

/// <summary>
/// Per-vCPU software MMU. Every method except <see cref="RequestFlush"/> and <see cref="Statistics"/> must be called on
/// the owning vCPU's thread. Failed accesses return false and leave the fault in <see cref="LastFault"/>.
/// </summary>
public sealed unsafe partial class Mmu : IDisposable
{
    /// <summary>MAXPHYADDR the MMU implements (CPUID 0x80000008 EAX[7:0] must report it).</summary>
    public const int PhysicalAddressBits = 40;

    /// <summary>Entries per privilege class (direct-mapped, indexed by linear address bits 12..22). 2,048 since session 5:
    /// with 512, conflict misses cost ~0.9 M page walks per benchmark boot (now ~0.37 M), for 0.26 MiB more.</summary>
    public const int TlbSets = 2048;

    internal const ulong TagInvalid = 1;
    internal const ulong TagSlow = 2;
    internal const uint EntryValid = 1;
    internal const uint EntryGlobal = 2;
    internal const uint EntryRam = 4;

    private const int PageSize = 4096;
    private const ulong PageOffsetMask = 0xFFF;
    private const ulong PageMask = ~PageOffsetMask;
    private const int ClassCount = 3;
    private const int ClassSupervisor = 0;
    private const int ClassSupervisorAc = 1;
    private const int ClassUser = 2;

    private const int RequestFlushAll = 1;
    private const int RequestCodeCheck = 2;

    // Pinned (the pinned object heap): translated code addresses the current class's slots through a raw pointer.
    private readonly TlbEntry[] _tlb = GC.AllocateArray<TlbEntry>(ClassCount * TlbSets, pinned: true);

    // Address of the current class's first slot (_tlb[_currentBase]), for translated code, which inlines the TLB
    // fast path (Translation/UnitCompiler.Memory.cs) and loads this once per unit entry (no privilege or AC change is
    // translated): one load instead of the array, the class base and a bounds-checked element address.
    private nint _currentTlb;

    internal static readonly global::System.Reflection.FieldInfo FieldCurrentTlb =
        typeof(Mmu).GetField(nameof(_currentTlb), global::System.Reflection.BindingFlags.Instance | global::System.Reflection.BindingFlags.NonPublic)!;
    private readonly MemorySystem _system;
    private readonly GuestMemory _memory;
    private readonly IoBus _mmio;
    private readonly CodePageTracker _code;
    private readonly ulong[] _pdpte = new ulong[4];
    private IPhysicalAccessHook? _hook;

    private PagingState _state;
    private PagingMode _mode;
    private ulong _linearMask = 0xFFFF_FFFF;
    private bool _wp;
    private bool _smep;
    private bool _smap;
    private bool _nxe;
    private bool _pge;
    private bool _pse;
    private int _class;
    private int _currentBase;

    // Slots filled since the last full sweep, so a flush touches only those (a CR3 load on a lightly used TLB would
    // otherwise rewrite all entries), kept apart by whether the entry was global when noted: a CR3 load walks the
    // non-global list only (the kernel's global entries, most of a busy TLB, survive it untouched). A slot whose
    // entry changes between global and non-global is noted again in the other list, so every valid non-global entry
    // is in _filled. Duplicates and stale indices are harmless; on overflow the next flush sweeps everything.
    private readonly int[] _filled = new int[ClassCount * TlbSets];
    private int _filledCount;
    private bool _filledOverflow;
    private readonly int[] _filledGlobal = new int[ClassCount * TlbSets];
    private int _filledGlobalCount;
    private bool _filledGlobalOverflow;
    private bool _anyFilled;
    private bool _anyGlobal;
    private ulong _largeLow = ulong.MaxValue;
    private ulong _largeHigh;

    private int _requests;
    private MmuFault _lastFault;
    private long _epoch;

    // Bumped by every flush, INVLPG and paging-state load; Epoch is this with the privilege class in the low bits.
    private long _flushEpoch;

    private long _tlbHits;
    private long _tlbMisses;
    private long _pageWalks;
    private long _pageFaults;
    private long _flushes;
    private long _pageInvalidations;
    private long _deviceAccesses;
    private bool _disposed;

    /// <summary>Creates the MMU of one vCPU of the VM described by <paramref name="system"/>; paging starts disabled at CPL 0.</summary>
    public Mmu(MemorySystem system, IPhysicalAccessHook? hook = null)
    {
        ArgumentNullException.ThrowIfNull(system);
        _system = system;
        _memory = system.Memory;
        _mmio = system.Mmio;
        _code = system.CodePages;
        _hook = hook;
        _filledOverflow = true; // default entries have tag 0 (= linear page 0): the first flush must sweep them all
        InvalidateEverything();
        Load(default);
        system.Attach(this);
    }

    /// <summary>A single-vCPU MMU with its own <see cref="MemorySystem"/> (tests, tools).</summary>
    public Mmu(GuestMemory memory, IoBus mmio, IPhysicalAccessHook? hook = null)
        : this(new MemorySystem(memory, mmio), hook)
    {
    }

    public MemorySystem System => _system;

    /// <summary>The fault left by the most recent failed access or translation.</summary>
    public MmuFault LastFault => _lastFault;

    /// <summary>The current paging state (as last given, with CR3 from the last <see cref="WriteCr3"/>).</summary>
    public PagingState State => _state;

    public PagingMode Mode => _mode;

    /// <summary>The PAE PDPTE registers (meaningful only in <see cref="PagingMode.Pae"/>).</summary>
    public ReadOnlySpan<ulong> PdpteRegisters => _pdpte;

    /// <summary>The per-vCPU physical hook (the LAPIC page). Setting it flushes the TLB.</summary>
    public IPhysicalAccessHook? PhysicalHook
    {
        get => _hook;
        set
        {
            _hook = value;
            FlushAll();
        }
    }

    /// <summary>Counters for --stats; may be read from any thread (values may be slightly stale).</summary>
    public MmuStatistics Statistics => new(
        Volatile.Read(ref _tlbHits), Volatile.Read(ref _tlbMisses), Volatile.Read(ref _pageWalks),
        Volatile.Read(ref _pageFaults), Volatile.Read(ref _flushes), Volatile.Read(ref _pageInvalidations),
        Volatile.Read(ref _deviceAccesses));

    /// <summary>
    /// Identifies the set of translations this vCPU may have cached outside the TLB: it changes with any flush,
    /// INVLPG or paging-state load, and with the privilege class. A decoder that remembers the translation of the page
    /// it is executing from compares this instead of translating again for every instruction. Leaving a class and
    /// coming back with no flush in between (a system call, an interrupt) gives the same value again: the class's TLB
    /// entries, and so anything derived from them, are still valid then, as they are on hardware.
    /// </summary>
    public long Epoch
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _epoch;
    }

    /// <summary>
    /// Invoked (on the requesting thread) after another thread posted a request that <see cref="Poll"/> must service:
    /// lets the owning vCPU poll promptly from its event check instead of on every instruction. Must be thread-safe
    /// and cheap (e.g. set an attention flag).
    /// </summary>
    public Action? RequestPosted { get; set; }

    // ---------------------------------------------------------------- paging state

    /// <summary>
    /// Loads a complete paging state without architectural checks (reset, SetState, snapshot restore): flushes the
    /// whole TLB and loads the PAE PDPTEs when in PAE mode (an invalid PDPTE is loaded as not present).
    /// </summary>
    public void Load(in PagingState state)
    {
        Apply(state);
        if (_mode == PagingMode.Pae && !TryReadPdptes(state.Cr3, _pdpte))
        {
            for (int i = 0; i < 4; i++)
            {
                if ((_pdpte[i] & PdpteReservedMask) != 0)
                {
                    _pdpte[i] = 0;
                }
            }
        }

        FlushAll();
    }

    /// <summary>
    /// Restores a saved paging state together with the PAE PDPTE registers it had (they are architectural state
    /// and may differ from the PDPT in memory, SDM Vol. 3A §4.4.1). Flushes the whole TLB.
    /// </summary>
    public void Load(in PagingState state, ReadOnlySpan<ulong> pdpteRegisters)
    {
        if (pdpteRegisters.Length != 4)
        {
            throw new ArgumentException("PAE has exactly four PDPTE registers", nameof(pdpteRegisters));
        }

        Apply(state);
        for (int i = 0; i < 4; i++)
        {
            ulong p = pdpteRegisters[i];
            _pdpte[i] = (p & PtePresent) != 0 && (p & PdpteReservedMask) != 0 ? 0 : p;
        }

        FlushAll();
    }

    /// <summary>The architectural state to persist (the TLB is not saved).</summary>
    public MmuState Save() => new(MmuState.CurrentVersion, _state, _pdpte[0], _pdpte[1], _pdpte[2], _pdpte[3], Supports1GbPages);

    /// <summary>Restores <see cref="Save"/>'s record; flushes the TLB.</summary>
    /// <exception cref="NotSupportedException">The record has a version this build does not know.</exception>
    public void Restore(MmuState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Version != MmuState.CurrentVersion)
        {
            throw new NotSupportedException($"MMU state version {state.Version} is not supported (expected {MmuState.CurrentVersion})");
        }

        Supports1GbPages = state.Supports1GbPages;
        Load(state.Paging, [state.Pdpte0, state.Pdpte1, state.Pdpte2, state.Pdpte3]);
    }

    /// <summary>
    /// After MOV to CR0 or CR4, WRMSR to EFER, or any other change of the paging controls other than a CR3 load
    /// (use <see cref="WriteCr3"/> for that): applies <paramref name="state"/>, flushes the whole TLB when a bit that
    /// affects translation changed (SDM Vol. 3A §4.10.4.1), and reloads the PDPTEs when the result is PAE paging and
    /// CR0.PG/CD/NW, CR4.PAE/PGE/PSE/SMEP or CR3 changed (§4.4.1).
    /// </summary>
    /// <returns>False when a PDPTE to load has a reserved bit set: the instruction raises #GP(0) and nothing changed.</returns>
    public bool SetPagingState(in PagingState state)
    {
        var old = _state;
        bool flush = ((old.Cr0 ^ state.Cr0) & PagingState.Cr0FlushBits) != 0
                  || ((old.Cr4 ^ state.Cr4) & PagingState.Cr4FlushBits) != 0
                  || ((old.Efer ^ state.Efer) & PagingState.EferFlushBits) != 0;
        bool cr3Changed = old.Cr3 != state.Cr3;
        bool reloadPdptes = cr3Changed
                         || ((old.Cr0 ^ state.Cr0) & PagingState.Cr0PdpteReloadBits) != 0
                         || ((old.Cr4 ^ state.Cr4) & PagingState.Cr4PdpteReloadBits) != 0
                         || old.Mode != PagingMode.Pae;
        if (state.Mode == PagingMode.Pae && reloadPdptes)
        {
            Span<ulong> p = stackalloc ulong[4];
            if (!TryReadPdptes(state.Cr3, p))
            {
                return false;
            }

            p.CopyTo(_pdpte);
        }

        Apply(state);
        if (flush)
        {
            FlushAll();
        }
        else if (cr3Changed)
        {
            FlushNonGlobal();
        }

        return true;
    }

    /// <summary>
    /// MOV to CR3 (or a task switch loading CR3): flushes all non-global entries, even when the value is unchanged,
    /// and under PAE paging loads the four PDPTEs.
    /// </summary>
    /// <returns>False when a PDPTE has a reserved bit set: #GP(0), CR3 not changed.</returns>
    public bool WriteCr3(ulong cr3)
    {
        if (_mode == PagingMode.Pae)
        {
            Span<ulong> p = stackalloc ulong[4];
            if (!TryReadPdptes(cr3, p))
            {
                return false;
            }

            p.CopyTo(_pdpte);
        }

        _state.Cr3 = cr3;
        FlushNonGlobal();
        return true;
    }

    /// <summary>
    /// Call whenever CPL or RFLAGS.AC may have changed (far transfers, interrupt delivery, IRET, SYSCALL/SYSRET,
    /// POPF, STAC/CLAC). Cheap: selects the TLB class, never flushes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetPrivilege(int cpl, ulong rflags)
    {
        _state.Cpl = cpl;
        _state.Rflags = rflags;
        int cls = cpl == 3 ? ClassUser : (_smap && (rflags & PagingState.RflagsAc) != 0) ? ClassSupervisorAc : ClassSupervisor;
        if (cls != _class)
        {
            _class = cls;
            _currentBase = cls * TlbSets;
            _currentTlb = (nint)Unsafe.AsPointer(ref _tlb[_currentBase]);
            _epoch = (_flushEpoch << 2) | (uint)cls;
        }
    }

    private void Apply(in PagingState state)
    {
        _state = state;
        _mode = state.Mode;
        bool paging = _mode != PagingMode.None;
        _linearMask = _mode == PagingMode.FourLevel ? ulong.MaxValue : 0xFFFF_FFFF;
        _wp = state.WriteProtect;
        _smep = paging && (state.Cr4 & PagingState.Cr4Smep) != 0;
        _smap = paging && (state.Cr4 & PagingState.Cr4Smap) != 0;
        _nxe = (state.Efer & PagingState.EferNxe) != 0 && _mode is PagingMode.Pae or PagingMode.FourLevel;
        _pge = paging && (state.Cr4 & PagingState.Cr4Pge) != 0;
        _pse = (state.Cr4 & PagingState.Cr4Pse) != 0;
        _class = -1; // force SetPrivilege to recompute the class (SMAP may have changed) and the epoch
        _flushEpoch++;
        SetPrivilege(state.Cpl, state.Rflags);
    }

    // ---------------------------------------------------------------- invalidation

    private void NextFlushEpoch()
    {
        _flushEpoch++;
        _epoch = (_flushEpoch << 2) | (uint)Math.Max(_class, 0);
    }

    /// <summary>Drops every cached translation, global ones included (CR4.PGE toggles, mode changes, requests).</summary>
    public void FlushAll()
    {
        _flushes++;
        NextFlushEpoch();
        InvalidateEverything();
    }

    /// <summary>Drops every non-global translation (what a CR3 load does).</summary>
    public void FlushNonGlobal()
    {
        _flushes++;
        NextFlushEpoch();
        if (!_anyGlobal)
        {
            InvalidateEverything();
            return;
        }

        if (!_anyFilled)
        {
            return;
        }

        var tlb = _tlb;
        if (_filledOverflow || _filledGlobalOverflow)
        {
            // Sweep everything; the global survivors make a fresh global list.
            _filledCount = 0;
            _filledOverflow = false;
            _filledGlobalCount = 0;
            _filledGlobalOverflow = false;
            for (int i = 0; i < tlb.Length; i++)
            {
                if ((tlb[i].Flags & EntryGlobal) == 0)
                {
                    Invalidate(ref tlb[i]);
                }
                else if ((tlb[i].Flags & EntryValid) != 0)
                {
                    _filledGlobal[_filledGlobalCount++] = i;
                }
            }

            return;
        }

        // Every valid non-global entry is in the non-global list; an entry there that became global since is also in
        // the global list.
        for (int k = 0; k < _filledCount; k++)
        {
            ref TlbEntry e = ref tlb[_filled[k]];
            if ((e.Flags & EntryGlobal) == 0)
            {
                Invalidate(ref e);
            }
        }

        _filledCount = 0;
    }

    /// <summary>INVLPG: drops the translations of the page holding <paramref name="linear"/> in every class, including the whole large page it belongs to.</summary>
    public void InvalidatePage(ulong linear)
    {
        _pageInvalidations++;
        NextFlushEpoch();
        linear &= _linearMask;
        ulong page = linear & PageMask;
        for (int c = 0; c < ClassCount; c++)
        {
            ref TlbEntry e = ref EntryAt(c * TlbSets, linear);
            if ((e.Flags & EntryValid) != 0 && e.LinearPage == page)
            {
                Invalidate(ref e);
            }
        }

        if (linear >= _largeLow && linear <= _largeHigh)
        {
            // Fragments of the large page holding linear can sit in any set: look at every filled slot.
            var tlb = _tlb;
            if (_filledOverflow || _filledGlobalOverflow)
            {
                for (int i = 0; i < tlb.Length; i++)
                {
                    DropIfInLargePage(ref tlb[i], linear);
                }
            }
            else
            {
                for (int k = 0; k < _filledCount; k++)
                {
                    DropIfInLargePage(ref tlb[_filled[k]], linear);
                }

                for (int k = 0; k < _filledGlobalCount; k++)
                {
                    DropIfInLargePage(ref tlb[_filledGlobal[k]], linear);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DropIfInLargePage(ref TlbEntry e, ulong linear)
    {
        if ((e.Flags & EntryValid) != 0 && e.PageShift > 12 && (e.LinearPage >> e.PageShift) == (linear >> e.PageShift))
        {
            Invalidate(ref e);
        }
    }

    /// <summary>From any thread: the owner flushes its whole TLB at its next <see cref="Poll"/> (TLB shootdown by the VMM, dirty-log rounds).</summary>
    public void RequestFlush()
    {
        Interlocked.Or(ref _requests, RequestFlushAll);
        RequestPosted?.Invoke();
    }

    internal void RequestCodeWriteCheck()
    {
        Interlocked.Or(ref _requests, RequestCodeCheck);
        RequestPosted?.Invoke();
    }

    /// <summary>
    /// Services requests from other threads. Call on the owner thread at instruction (or translated-block)
    /// boundaries; costs one memory read when nothing is pending.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Poll()
    {
        if (Volatile.Read(ref _requests) != 0)
        {
            ServiceRequests();
        }
    }

    private void ServiceRequests()
    {
        int r = Interlocked.Exchange(ref _requests, 0);
        if ((r & RequestFlushAll) != 0)
        {
            FlushAll();
            return;
        }

        if ((r & RequestCodeCheck) != 0)
        {
            var tlb = _tlb;
            for (int i = 0; i < tlb.Length; i++)
            {
                ref TlbEntry e = ref tlb[i];
                if ((e.WriteTag & (TagInvalid | TagSlow)) == 0 && (e.Flags & EntryValid) != 0 && _code.IsCodePage(e.PhysicalPage))
                {
                    e.WriteTag |= TagSlow;
                }
            }
        }
    }

    /// <summary>
    /// Marks the guest-physical page holding <paramref name="physicalAddress"/> as holding decoded code. The decoder
    /// cache calls this on the executing vCPU's MMU BEFORE reading the instruction bytes; from then on the first store
    /// to the page by any vCPU raises <see cref="CodePageTracker.PageWritten"/>. Pages outside RAM are not tracked:
    /// never cache instructions fetched from a <see cref="FetchPage"/> with <see cref="FetchPage.IsRam"/> false.
    /// </summary>
    public void MarkCodePage(ulong physicalAddress)
    {
        ulong page = physicalAddress & PageMask;
        if (!_code.TryMark(page))
        {
            return;
        }

        var tlb = _tlb;
        for (int i = 0; i < tlb.Length; i++)
        {
            ref TlbEntry e = ref tlb[i];
            if ((e.WriteTag & TagInvalid) == 0 && e.PhysicalPage == page)
            {
                e.WriteTag |= TagSlow;
            }
        }

        _system.OnCodePageMarked(this);
    }

    private void InvalidateEverything()
    {
        var tlb = _tlb;
        if (_filledOverflow || _filledGlobalOverflow)
        {
            for (int i = 0; i < tlb.Length; i++)
            {
                Invalidate(ref tlb[i]);
            }
        }
        else
        {
            for (int k = 0; k < _filledCount; k++)
            {
                Invalidate(ref tlb[_filled[k]]);
            }

            for (int k = 0; k < _filledGlobalCount; k++)
            {
                Invalidate(ref tlb[_filledGlobal[k]]);
            }
        }

        _filledCount = 0;
        _filledOverflow = false;
        _filledGlobalCount = 0;
        _filledGlobalOverflow = false;
        _anyFilled = false;
        _anyGlobal = false;
        _largeLow = ulong.MaxValue;
        _largeHigh = 0;
    }

    /// <summary>Records that slot <paramref name="index"/> was filled with a global or non-global entry (called by Fill
    /// when the slot was empty or its entry changes between the two).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void NoteFilled(int index, bool global)
    {
        if (!global)
        {
            if (_filledCount < _filled.Length)
            {
                _filled[_filledCount++] = index;
            }
            else
            {
                _filledOverflow = true;
            }
        }
        else if (_filledGlobalCount < _filledGlobal.Length)
        {
            _filledGlobal[_filledGlobalCount++] = index;
        }
        else
        {
            _filledGlobalOverflow = true;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Invalidate(ref TlbEntry e)
    {
        e.ReadTag = TagInvalid;
        e.WriteTag = TagInvalid;
        e.ExecTag = TagInvalid;
        e.Flags = 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref TlbEntry EntryAt(int classBase, ulong linear)
    {
        // SAFETY-free: the index is masked into [classBase, classBase + TlbSets), inside the array.
        return ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_tlb), classBase + (int)((linear >> 12) & (TlbSets - 1)));
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _system.Detach(this);
    }
}
