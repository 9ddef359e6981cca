// Fetch, decode (through the per-physical-page decode cache) and execute. Instructions are decoded once with
// IP = their offset in the page, so one cached page serves every linear alias of it; branch targets and RIP-relative
// addresses are rebased with (decoded value - decoded next IP) + real next RIP.
using System.Runtime.CompilerServices;
using Iced.Intel;
using Ringvisor.Emulator.Decoding;
using Ringvisor.Emulator.Exceptions;
using Ringvisor.Emulator.Memory;

namespace Ringvisor.Emulator.Instructions;

public sealed unsafe partial class Cpu
{
    private readonly BufferCodeReader _reader = new();
    private readonly Decoder _decoder16;
    private readonly Decoder _decoder32;
    private readonly Decoder _decoder64;
    private readonly Dictionary<ulong, CodePage> _codePages = [];

    // Fetch cache: the linear page RIP is in, its decoded page, the host address of that guest page, and the MMU
    // epoch it was translated in (any flush, INVLPG or privilege-class change moves the epoch on; -1 = invalid).
    private long _fetchEpoch = -1;
    private ulong _fetchLinearPage;
    private CodePage? _fetchPage;
    private nint _fetchHostPage;

    // Decoded pages kept per vCPU before the least recently used are dropped (TrimDecodedPages).
    internal const int MaxDecodedPages = 1024;
    private long _fetchClock;

    // Recently used fetch pages (SwitchFetchPage), valid under the same rules as the current one.
    private const int RecentFetchPages = 64;
    private static readonly RecentFetchPage NoRecentFetchPage = new(0, -1, null, 0); // epoch -1 never matches
    private readonly RecentFetchPage[] _recentFetchPages = NewRecentFetchPages();
    private Instruction _crossing;

    // The VM's code-page tracker (generations checked at every fetch), cached here to save an indirection.
    private readonly CodePageTracker _codePageTracker;

    internal ulong _nextRip;
    private bool _faultPending;
    private int _faultVector;
    private uint _faultError;
    private bool _faultHasError;
    private long _instructions;
    private long _decodes;
    private long _unitProbes;

    /// <summary>Records a fault raised by the current instruction; always returns false for `return Fault(...)`.</summary>
    internal bool Fault(int vector, uint error = 0)
    {
        if (!_faultPending)
        {
            _faultPending = true;
            _faultVector = vector;
            _faultError = error;
            _faultHasError = ExceptionVector.HasErrorCode(vector);
        }

        return false;
    }

    internal bool Ud() => Fault(ExceptionVector.InvalidOpcode);

    internal bool Gp(uint error = 0) => Fault(ExceptionVector.GeneralProtection, error);

    public long InstructionsExecuted => _instructions;

    /// <summary>
    /// Executes up to <paramref name="count"/> instructions. Stops early when the vCPU halts or when
    /// <see cref="_stopBatch"/> is set (attention, shutdown, hypercall exit).
    /// </summary>
    internal void ExecuteBatch(int count)
    {
        _stopBatch = false;
        _mmu.Poll();
        long start = _instructions;
        if (_translationMode == 0)
        {
            InitTranslation();
        }

        // Decided once per batch: with translation off, or outside 64-bit mode (no unit exists for other modes), the
        // loop pays nothing per instruction for the translator (its check cost ~12% of interpreter speed). A switch
        // into 64-bit mode inside a batch is picked up by the next batch.
        if (_translationMode > 0 && _bitness == 64)
        {
            ReleaseDroppedUnits();
            bool collect = _host.Options.CollectStats;
            _probeNext = true;
            for (int n = 0; n < count; n++)
            {
                if (_attention)
                {
                    // An interrupt delivered here moves RIP: probe there.
                    _probeNext = true;
                    if (ServiceEvents())
                    {
                        break;
                    }
                }

                if (_halted || _stopBatch)
                {
                    break;
                }

                // The lookup counts the execution towards the translation threshold; a cold instruction costs this
                // probe and nothing else. Only block leaders are probed (see _probeNext).
                var unit = _probeNext ? FindUnit() : null;
                if (unit is not null && CanEnterUnit)
                {
                    RunUnits(unit, ref n, count);
                    _probeNext = true;
                }
                else
                {
                    if (collect)
                    {
                        SampleInterpretedIfDue();
                    }

                    Step();
                }
            }
        }
        else
        {
            for (int n = 0; n < count; n++)
            {
                if (_attention && ServiceEvents())
                {
                    break;
                }

                if (_halted || _stopBatch)
                {
                    break;
                }

                Step();
            }
        }

        if (_host.Options.CollectStats)
        {
            _stats.AddInstructions(_instructions - start);
            ReportMmuStats();
            _stats.AddDecodes(_decodes);
            _stats.AddUnitProbes(_unitProbes);
            _unitProbes = 0;
            _stats.ReportDecodedPages(_codePages.Count);
            _decodes = 0;
        }
    }

    /// <summary>Executes one instruction (delivering any fault it raises).</summary>
    /// <remarks>Inlined into the batch loop: saves a call and a six-register prologue per guest instruction (about 8%
    /// fewer host instructions on `bench mips`).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Step()
    {
        bool shadow = _interruptShadow;
        bool singleStep = (_flags & FlagTf) != 0;
        var page = FetchSlot(out int slot);
        if (!_faultPending)
        {
            if (page is not null)
            {
                ref FastOp op = ref page.Ops[slot];
                _nextRip = _bitness == 64 ? Rip + op.Length : RipWrap(Rip + op.Length);
                if (_trace is not null)
                {
                    TraceInstruction(InstructionAt(page, slot));
                }

                if (op.Kind == FastKind.Generic)
                {
                    _probeNext = true;
                    Execute(page.GenericInstructions[op.GenericIndex]);
                }
                else
                {
                    // Jcc, Jmp, CallRel and Ret (adjacent in FastKind) end a block; the other fast forms fall through.
                    _probeNext = (uint)(op.Kind - FastKind.Jcc) <= FastKind.Ret - FastKind.Jcc;
                    ExecFast(ref op);
                }
            }
            else
            {
                _probeNext = true;
                _nextRip = RipWrap(Rip + (ulong)_crossing.Length);
                if (_trace is not null)
                {
                    TraceInstruction(_crossing);
                }

                Execute(_crossing);
            }

            _instructions++;
        }

        if (_faultPending)
        {
            _faultPending = false;
            _setShadow = false;
            _probeNext = true;
            DeliverException(_faultVector, _faultHasError, _faultError, ExceptionSource.Fault);
        }
        else if (_softwareVector >= 0)
        {
            _probeNext = true;
            // INT n / INT3 / INTO / INT1: delivered as part of the instruction, returning after it.
            int vector = _softwareVector;
            _softwareVector = -1;
            DeliverException(vector, false, 0, _softwareSource);
        }
        else
        {
            Rip = _nextRip;

            // RF (set by an IRET that restarts a faulting instruction) clears once an instruction completes
            // (SDM Vol. 3A §2.3, EFLAGS.RF).
            _flags &= ~FlagRf;
            if (singleStep && _suppressSingleStep)
            {
                _suppressSingleStep = false;
            }
            else if (singleStep && _halted)
            {
                // HLT completes when the halt ends: its trap is taken on wake-up, ahead of the waking event.
                _singleStepOnWake = true;
            }
            else if (singleStep)
            {
                // TF set at the start of the instruction: single-step #DB trap after it (SDM Vol. 3A §17.3.1.4),
                // reported in DR6.BS.
                Dr[6] |= 1 << 14;
                _probeNext = true;
                DeliverException(Exceptions.ExceptionVector.Debug, false, 0, ExceptionSource.Fault);
            }
        }

        // An interrupt shadow lasts exactly one instruction (SDM Vol. 3A §6.8.3 / STI, MOV SS).
        if (shadow)
        {
            _interruptShadow = false;
        }

        if (_setShadow)
        {
            _setShadow = false;
            _interruptShadow = true;
            _attention = true;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong RipWrap(ulong rip) => _bitness == 64 ? rip : _bitness == 32 ? (uint)rip : (ushort)rip;

    // Slot of the instruction FetchSlot returned last on the current fetch page (any value: it is only a guess).
    private int _lastFetchSlot;

    /// <summary>
    /// Whether the translator's probe (FindUnit) runs before the next interpreted instruction: only at block leaders.
    /// Step clears it after a fast-path instruction that falls through (no transfer, no fault, no software
    /// interrupt); everything else (a Generic or page-crossing instruction, a branch, a fault, an interrupt delivered,
    /// a unit's exit, a batch start) sets it. An instruction in the middle of a straight run is never the first a
    /// unit needs: a region is chosen from its leader onwards, and the instruction after an untranslated one is probed.
    /// In a boot about two thirds of the interpreted instructions skip the probe.
    /// </summary>
    private bool _probeNext = true;

    /// <summary>Finds (decoding if needed) the instruction at CS:RIP: its page and slot, or null with the instruction
    /// in <see cref="_crossing"/> (page-crossing or MMIO code), or null with a fault pending.</summary>
    private CodePage? FetchSlot(out int slot)
    {
        ulong la = _bitness == 64 ? Rip : Linear(SegCs, Rip);
        int off = (int)(la & 0xFFF);
        var page = _fetchPage;
        if (_fetchEpoch != _mmu.Epoch || (la >> 12) != _fetchLinearPage || page!.Generation != _codePageTracker.PageGeneration(page.PhysPage))
        {
            page = SwitchFetchPage(la);
            if (page is null)
            {
                slot = 0;
                return null;
            }
        }

        // The instruction fetched last (the translator's probe, then Step, fetch the same one) or the one decoded after
        // it (straight-line code is decoded in order): confirmed by the slot's offset, without the offset map.
        int next = _lastFetchSlot + 1;
        var ops = page.Ops;
        int count = page.Count;
        if ((uint)next < (uint)ops.Length && ops[next].Offset == off && next < count)
        {
            slot = _lastFetchSlot = next;
            return page;
        }

        if ((uint)(next - 1) < (uint)ops.Length && ops[next - 1].Offset == off && next - 1 < count)
        {
            slot = next - 1;
            return page;
        }

        int s = page.SlotAt(off);
        if (s != 0)
        {
            slot = _lastFetchSlot = s - 1;
            return page;
        }

        slot = DecodeInto(page, la, off);
        return slot < 0 ? null : page;
    }

    /// <summary>
    /// The fetch page for <paramref name="la"/> when it is not the current one: from a small direct-mapped cache of
    /// recently used linear code pages when its entry is still valid (same MMU epoch, page not rewritten: the rules of
    /// the current-page check), else a full lookup that refills the entry. Code that moves between a few pages (a
    /// loop split by a page boundary, a caller, its callees and memcpy) skips the TLB and decoded-page lookups.
    /// </summary>
    private CodePage? SwitchFetchPage(ulong la)
    {
        ulong linearPage = la >> 12;
        ref var e = ref _recentFetchPages[(int)(linearPage & (RecentFetchPages - 1))];
        var page = e.Page;
        if (e.LinearPage == linearPage && page is not null && page.Bitness == _bitness &&
            page.Generation == _codePageTracker.PageGeneration(page.PhysPage) &&
            (e.Epoch == _mmu.Epoch || _mmu.CachedFetchPage(la) == page.PhysPage))
        {
            // An entry from before an epoch change whose page the TLB still maps there (global kernel code after a
            // CR3 load, or a page refilled since) is renewed: what LookupPage would find.
            if (e.Epoch != _mmu.Epoch)
            {
                e = e with { Epoch = _mmu.Epoch };
            }

            page.LastUse = ++_fetchClock;
            _fetchPage = page;
            _fetchLinearPage = linearPage;
            _fetchHostPage = e.HostPage;
            _fetchEpoch = e.Epoch;
            return page;
        }

        page = LookupPage(la);
        if (page is not null)
        {
            e = new RecentFetchPage(linearPage, _fetchEpoch, page, _fetchHostPage);
        }

        return page;
    }

    private CodePage? LookupPage(ulong la)
    {
        _fetchEpoch = -1;
        if (!_mmu.TryTranslateFetch(la, out FetchPage fetch))
        {
            _ = MmuFault();
            return null;
        }

        if (!fetch.IsRam)
        {
            // Code in MMIO (or the APIC page): decode every time, never cached.
            DecodeUncached(la);
            return null;
        }

        // Mark before reading the generation (and the bytes), so a store racing with this decode invalidates what we
        // cache. Stores by this or any other vCPU to a marked page bump its generation (CodePageTracker).
        _mmu.MarkCodePage(fetch.PhysicalPage);
        ulong ppage = fetch.PhysicalPage >> 12;
        int gen = _codePageTracker.PageGeneration(ppage);
        if (!_codePages.TryGetValue(ppage, out var page) || page.Generation != gen || page.Bitness != _bitness)
        {
            if (page is null && _codePages.Count >= MaxDecodedPages)
            {
                TrimDecodedPages();
            }

            if (page?.UnitSlots is not null && page.Generation != gen && _host.Options.CollectStats)
            {
                // The page was rewritten under units entered from it: they are never found again.
                _stats.UnitInvalidated();
            }

            page = new CodePage(ppage, _bitness, gen);
            _codePages[ppage] = page;
        }

        page.LastUse = ++_fetchClock;
        _fetchPage = page;
        _fetchLinearPage = la >> 12;
        _fetchHostPage = fetch.HostPage;

        // Read the epoch last: marking a code page may not move it, but nothing above may have flushed either.
        _fetchEpoch = _mmu.Epoch;
        return page;
    }

    /// <summary>
    /// Iced's form of the instruction at <paramref name="slot"/> of the fetch page, which must hold RIP (FetchSlot just
    /// returned them): the kept one for a Generic form, else decoded again from the page (fast forms keep no Iced
    /// instruction). For --trace and --stats only.
    /// </summary>
    internal Instruction InstructionAt(CodePage page, int slot)
    {
        ref FastOp op = ref page.Ops[slot];
        if (op.Kind == FastKind.Generic)
        {
            return page.GenericInstructions[op.GenericIndex];
        }

        // Fast forms exist only in 64-bit pages, where the linear address is RIP; the instruction lies inside the page.
        int off = (int)(Rip & 0xFFF);
        // SAFETY: _fetchHostPage maps the fetch page's 4 KiB; op.Length bytes from off were decoded from it.
        new ReadOnlySpan<byte>((byte*)_fetchHostPage + off, op.Length).CopyTo(_reader.Buffer);
        _reader.Length = op.Length;
        _reader.Position = 0;
        _decoder64.IP = (ulong)off;
        _decoder64.Decode(out var ins);
        return ins;
    }

    private Decoder CurrentDecoder => _bitness == 64 ? _decoder64 : _bitness == 32 ? _decoder32 : _decoder16;

    /// <summary>Decodes the instruction at page offset <paramref name="off"/> of the fetch page (valid: FetchSlot just checked it).</summary>
    private int DecodeInto(CodePage page, ulong la, int off)
    {
        int avail = Math.Min(15, 0x1000 - off);
        if (avail < 15 && page.CrossingOffset == off && page.CrossingEpoch == _mmu.Epoch &&
            _codePageTracker.PageGeneration(page.CrossingPhysPage) == page.CrossingGeneration)
        {
            // The page-crossing instruction decoded last time: same linear-to-physical mapping (epoch), neither page
            // rewritten (this CodePage is the first page's current generation).
            _crossing = page.CrossingInstruction;
            return -1;
        }

        _decodes++;

        // SAFETY: _fetchHostPage maps the whole 4 KiB RAM page the fetch cache holds; avail bytes from off stay inside it.
        new ReadOnlySpan<byte>((byte*)_fetchHostPage + off, avail).CopyTo(_reader.Buffer);
        _reader.Length = avail;
        _reader.Position = 0;
        var dec = CurrentDecoder;
        dec.IP = (ulong)off;
        dec.Decode(out var ins);
        if (dec.LastError == DecoderError.NoMoreBytes)
        {
            // The instruction continues on the next page: fetch it (it may fault) and keep it beside the first page,
            // valid while the second page's mapping and contents stay (md5sum's hot loop has one such instruction).
            DecodeCrossing(page, la, off);
            return -1;
        }

        if (ins.Code == Code.INVALID)
        {
            _crossing = ins;
            return -1;
        }

        int slot = page.Add(ins);
        page.SetSlot(off, slot);
        return slot;
    }

    private void DecodeCrossing(CodePage page, ulong la, int off)
    {
        long epoch = _mmu.Epoch;
        ulong second = AddressWrap((la | 0xFFF) + 1);
        bool cacheable = _mmu.TryTranslateFetch(second, out FetchPage fetch) && fetch.IsRam;
        int generation = 0;
        if (cacheable)
        {
            // Mark before reading the generation and the bytes (as LookupPage does), so a racing store invalidates.
            _mmu.MarkCodePage(fetch.PhysicalPage);
            generation = _codePageTracker.PageGeneration(fetch.PhysicalPage >> 12);
        }

        DecodeUncached(la);
        if (cacheable && !_faultPending && _crossing.Code != Code.INVALID && _mmu.Epoch == epoch)
        {
            page.CrossingOffset = off;
            page.CrossingInstruction = _crossing;
            page.CrossingPhysPage = fetch.PhysicalPage >> 12;
            page.CrossingGeneration = generation;
            page.CrossingEpoch = epoch;
        }
    }

    /// <summary>
    /// Decodes the instruction at <paramref name="la"/> into <see cref="_crossing"/>, fetching up to 15 bytes page by
    /// page (each page must be executable; only the bytes the decoder needs are fetched).
    /// </summary>
    private void DecodeUncached(ulong la)
    {
        _decodes++;
        int have = 0;
        int off = (int)(la & 0xFFF);
        var dec = CurrentDecoder;
        while (true)
        {
            ulong a = AddressWrap(la + (ulong)have);
            int chunk = Math.Min(15 - have, 0x1000 - (int)(a & 0xFFF));
            if (!_mmu.TryFetch(a, _reader.Buffer.AsSpan(have, chunk)))
            {
                _ = MmuFault();
                return;
            }

            have += chunk;
            _reader.Length = have;
            _reader.Position = 0;
            dec.IP = (ulong)off;
            dec.Decode(out _crossing);
            if (dec.LastError != DecoderError.NoMoreBytes || have >= 15)
            {
                return;
            }
        }
    }

    /// <summary>Rebased target of a near branch decoded with page-offset IPs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong BranchTarget(in Instruction ins)
    {
        ulong t = _nextRip + (ins.NearBranchTarget - ins.NextIP);
        return ins.GetOpKind(0) switch
        {
            OpKind.NearBranch16 => (ushort)t,
            OpKind.NearBranch32 => (uint)t,
            _ => t,
        };
    }

    /// <summary>
    /// Drops the least recently used quarter of the decoded pages. Decoding is cheap and a boot touches ~1,600 code
    /// pages of which a few hundred stay hot, while each decoded page costs tens of KiB (instructions, fast forms, the
    /// offset map, translation slots): unbounded, the decode cache was most of the managed heap. Translated units
    /// live on in the shared cache and are found again from a re-decoded page (ProbeCache).
    /// </summary>
    private void TrimDecodedPages()
    {
        var stamps = new long[_codePages.Count];
        int i = 0;
        foreach (var p in _codePages.Values)
        {
            stamps[i++] = p.LastUse;
        }

        Array.Sort(stamps);
        long cutoff = stamps[stamps.Length / 4];
        List<ulong> old = [];
        foreach (var (ppage, p) in _codePages)
        {
            if (p.LastUse < cutoff)
            {
                old.Add(ppage);
            }
        }

        foreach (ulong ppage in old)
        {
            _codePages.Remove(ppage);
        }

        // The recent-page cache must not keep evicted pages alive (or found).
        ForgetRecentFetchPages();
    }

    /// <summary>Drops every cached decoded page of this vCPU (e.g. after a snapshot restore).</summary>
    internal void ClearDecodeCache()
    {
        _codePages.Clear();
        ForgetRecentFetchPages();
    }

    /// <summary>Forgets the fetch page (mode or bitness changed, decode cache dropped).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void InvalidateFetchPage() => _fetchEpoch = -1;

    /// <summary>Empties the recent fetch pages (decoded pages dropped: their contents may be stale, or they should be
    /// collected).</summary>
    private void ForgetRecentFetchPages()
    {
        _fetchEpoch = -1;
        Array.Fill(_recentFetchPages, NoRecentFetchPage);
    }

    private static RecentFetchPage[] NewRecentFetchPages()
    {
        var a = new RecentFetchPage[RecentFetchPages];
        Array.Fill(a, NoRecentFetchPage);
        return a;
    }
}
