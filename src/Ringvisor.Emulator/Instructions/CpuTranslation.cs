// The dispatcher between the interpreter and translated code (Translation/). ExecuteBatch looks for a unit (FindUnit)
// before each interpreted step and hands over to RunUnits when there is one: a slot beside each decoded instruction
// (CodePage.UnitSlots) counts executions; a hot RIP gets a unit from the per-VM cache (queued for the background
// translator or translated on the spot), and while units are found for the next RIP they run back to back.
// Translated code is never entered with TF or RF set, in an interrupt shadow, while tracing, with a fault pending or
// outside 64-bit mode; a fault inside a unit is delivered here exactly as Step() does.
using System.Diagnostics;
using Iced.Intel;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Ringvisor.Emulator.Decoding;
using Ringvisor.Emulator.Exceptions;
using Ringvisor.Emulator.Memory;
using Ringvisor.Emulator.Translation;

namespace Ringvisor.Emulator.Instructions;

public sealed unsafe partial class Cpu
{
    // Executions of an instruction after which the shared cache is probed for a unit (another vCPU's, or one this vCPU
    // found before the page was decoded again), long before the translation threshold.
    private const int ProbeHeat = 4;

    // Times one exit's link is remade before the dispatcher gives up on it (an indirect exit with many targets).
    private const int MaxLinkUpdates = 32;
    private const BindingFlags AnyInstance = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;
    private const BindingFlags AnyStatic = BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public;

    // Members the translator's IL touches, resolved once (names checked by the compiler through nameof).
    internal static readonly FieldInfo FieldGpr = typeof(Cpu).GetField(nameof(Gpr), AnyInstance)!;
    internal static readonly FieldInfo FieldRip = typeof(Cpu).GetField(nameof(Rip), AnyInstance)!;
    internal static readonly FieldInfo FieldNextRip = typeof(Cpu).GetField(nameof(_nextRip), AnyInstance)!;
    internal static readonly FieldInfo FieldFlags = typeof(Cpu).GetField(nameof(_flags), AnyInstance)!;
    internal static readonly FieldInfo FieldFlagOp = typeof(Cpu).GetField(nameof(_flagOp), AnyInstance)!;
    internal static readonly FieldInfo FieldFA = typeof(Cpu).GetField(nameof(_fA), AnyInstance)!;
    internal static readonly FieldInfo FieldFB = typeof(Cpu).GetField(nameof(_fB), AnyInstance)!;
    internal static readonly FieldInfo FieldFRes = typeof(Cpu).GetField(nameof(_fRes), AnyInstance)!;
    internal static readonly FieldInfo FieldFSize = typeof(Cpu).GetField(nameof(_fSize), AnyInstance)!;
    internal static readonly FieldInfo FieldFCarryIn = typeof(Cpu).GetField(nameof(_fCarryIn), AnyInstance)!;
    internal static readonly FieldInfo FieldAttention = typeof(Cpu).GetField(nameof(_attention), AnyInstance)!;
    internal static readonly FieldInfo FieldInstructions = typeof(Cpu).GetField(nameof(_instructions), AnyInstance)!;
    internal static readonly FieldInfo FieldStackSegment = typeof(Cpu).GetField(nameof(_stackSegment), AnyInstance)!;
    internal static readonly FieldInfo FieldSeg = typeof(Cpu).GetField(nameof(Seg), AnyInstance)!;
    internal static readonly FieldInfo FieldUnitGeneration = typeof(Cpu).GetField(nameof(_unitGeneration), AnyInstance)!;
    // Translated code calls these out-of-line, size-specialised accessors: inlining the MMU's fast path at every
    // access made the JIT take milliseconds per unit (measured: ~2.8 ms for ~40 guest instructions).
    private static readonly MethodInfo[] s_translatedReads =
    [
        typeof(Cpu).GetMethod(nameof(TranslatedRead1), AnyInstance)!,
        typeof(Cpu).GetMethod(nameof(TranslatedRead2), AnyInstance)!,
        typeof(Cpu).GetMethod(nameof(TranslatedRead4), AnyInstance)!,
        typeof(Cpu).GetMethod(nameof(TranslatedRead8), AnyInstance)!,
    ];

    private static readonly MethodInfo[] s_translatedWrites =
    [
        typeof(Cpu).GetMethod(nameof(TranslatedWrite1), AnyInstance)!,
        typeof(Cpu).GetMethod(nameof(TranslatedWrite2), AnyInstance)!,
        typeof(Cpu).GetMethod(nameof(TranslatedWrite4), AnyInstance)!,
        typeof(Cpu).GetMethod(nameof(TranslatedWrite8), AnyInstance)!,
    ];
    internal static readonly FieldInfo FieldMmu = typeof(Cpu).GetField(nameof(_mmu), AnyInstance)!;
    internal static readonly FieldInfo FieldFpuRegs = typeof(Cpu).GetField(nameof(FpuRegs), AnyInstance)!;
    internal static readonly MethodInfo MethodRead16 = typeof(Cpu).GetMethod(nameof(TranslatedRead16), AnyInstance)!;
    internal static readonly MethodInfo MethodWrite16 = typeof(Cpu).GetMethod(nameof(TranslatedWrite16), AnyInstance)!;
    internal static readonly MethodInfo MethodSseUsable = typeof(Cpu).GetMethod(nameof(TranslatedSseUsable), AnyInstance)!;
    internal static readonly MethodInfo MethodCondition = typeof(Cpu).GetMethod(nameof(TranslatedCondition), AnyInstance)!;
    internal static readonly MethodInfo MethodGetCf = typeof(Cpu).GetMethod(nameof(TranslatedCarry), AnyInstance)!;
    internal static readonly MethodInfo MethodIsCanonical = typeof(Cpu).GetMethod(nameof(IsCanonical), AnyStatic)!;
    internal static readonly MethodInfo MethodTranslatedExecute = typeof(Cpu).GetMethod(nameof(TranslatedExecute), AnyInstance)!;
    internal static readonly MethodInfo MethodPageValid = typeof(Cpu).GetMethod(nameof(TranslatedPageValid), AnyInstance)!;
    internal static readonly MethodInfo MethodPatchCfOf = typeof(Cpu).GetMethod(nameof(PatchCfOf), AnyInstance)!;
    internal static readonly MethodInfo MethodEagerArithBits = typeof(Cpu).GetMethod(nameof(EagerArithBits), AnyStatic)!;
    internal static readonly MethodInfo MethodBigMul = typeof(Math).GetMethod(nameof(Math.BigMul), [typeof(long), typeof(long), typeof(long).MakeByRefType()])!;

    // 0 = not decided yet, 1 = on, -1 = off (options or RINGVISOR_BT_TRANSLATE=0).
    private int _translationMode;
    private int _translationThreshold;
    private TranslationCache? _translationCache;
    private readonly byte[] _translationPage = new byte[4096 + CrossingPage.MaxBytes];

    // Pages as TranslatedPageValid last found them mapped (a crossing instruction's next page, a trace's other pages),
    // direct-mapped by linear page.
    private const int PageCheckEntries = 16;
    private readonly (ulong Linear, ulong PhysPage, long Epoch)[] _pageChecks = InitialPageChecks();

    // Per TranslationExit, plus the exits that went straight to a linked unit and those the jump cache served.
    private const int ChainedExitSlot = 7;
    private const int JumpCacheHitSlot = 8;
    private readonly long[] _translationExitCounts = new long[9];

    // The generation of the running unit's page (its key's), set by the dispatcher before each call: what the unit's
    // stores and helper calls compare the page with to see whether they rewrote code (a unit serves every generation
    // of its page whose bytes it was translated from, TranslatedUnit.ForGeneration).
    internal int _unitGeneration;

    // Jump cache (QEMU's tb_jmp_cache, per vCPU): the unit last found at a RIP after an exit, valid while the MMU epoch
    // holds and the unit is not evicted (a store to its page evicts it). Serves the exits whose chain link names another RIP (returns and indirect
    // jumps with several targets) without the fetch-page lookup FindUnit does.
    private const int JumpCacheEntries = 1024;
    private readonly JumpCacheEntry[] _jumpCache = new JumpCacheEntry[JumpCacheEntries];

    private record struct JumpCacheEntry(ulong Rip, long Epoch, TranslatedUnit? Unit)
    {
        public long Epoch = Epoch;
    }

    private static int JumpCacheIndex(ulong rip) => (int)((rip ^ (rip >> 10)) & (JumpCacheEntries - 1));
    private int _interpretedSample;
    private CodePage? _executedPage;
    private int _executedCrossing = -1;
    private long _seenCacheFlushes;
    private long _seenCacheStale;
    private const int ReleaseAfterStale = 64;
    private Func<int, bool>? _regionMayTakeCache;

    // What a region may take besides its entry (UnitBuilder): what the interpreter has run (with a threshold of 1,
    // translate on first execution as the tests do, nothing after the entry has run yet: the whole reachable region),
    // and never the entry of another unit (RegionMayTake).
    private Func<int, bool> _regionMayTake => _regionMayTakeCache ??= RegionMayTake;

    /// <summary>Whether this vCPU runs translated code (decided on first use from the options and the environment).</summary>
    internal bool TranslationEnabled => _translationMode > 0;

    /// <summary>The arithmetic-flag bits EagerFlags would set (CF/OF as given, ZF/SF/PF from the result, AF clear).</summary>
    internal static ulong EagerArithBits(ulong res, int size, bool cf, bool of)
    {
        res &= SizeMask(size);
        ulong f = 0;
        if (cf)
        {
            f |= FlagCf;
        }

        if (of)
        {
            f |= FlagOf;
        }

        if (res == 0)
        {
            f |= FlagZf;
        }

        if ((res & SignBit(size)) != 0)
        {
            f |= FlagSf;
        }

        if ((System.Numerics.BitOperations.PopCount(res & 0xFF) & 1) == 0)
        {
            f |= FlagPf;
        }

        return f;
    }

    /// <summary>The read accessor translated code calls for an access of <paramref name="size"/> bytes (1, 2, 4, 8).</summary>
    internal static MethodInfo TranslatedReadMethod(int size) => s_translatedReads[System.Numerics.BitOperations.Log2((uint)size)];

    /// <summary>
    /// The write accessor translated code calls for an access of <paramref name="size"/> bytes (1, 2, 4, 8). It returns
    /// 0 when the unit may go on, 1 on a fault (recorded), 2 when the unit must exit after this instruction: the store
    /// changed the generation of the unit's own page (self-modifying code) or attention was raised (an MMIO write to
    /// the APIC, a kick). One call instead of three kept the JIT time of store-heavy units down (about 50 us per store
    /// before, measured with a probe compiling units of ten stores).
    /// </summary>
    internal static MethodInfo TranslatedWriteMethod(int size) => s_translatedWrites[System.Numerics.BitOperations.Log2((uint)size)];

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal bool TranslatedCondition(int cc) => Condition(cc);

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal bool TranslatedCarry() => GetCf();

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal bool TranslatedRead1(ulong la, out ulong value) => ReadMem(la, 1, out value);

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal bool TranslatedRead2(ulong la, out ulong value) => ReadMem(la, 2, out value);

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal bool TranslatedRead4(ulong la, out ulong value) => ReadMem(la, 4, out value);

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal bool TranslatedRead8(ulong la, out ulong value) => ReadMem(la, 8, out value);

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal int TranslatedWrite1(ulong la, ulong value, ulong physPage, int generation) =>
        !WriteMem(la, 1, value) ? 1 : _codePageTracker.PageGeneration(physPage) != generation || _attention ? 2 : 0;

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal int TranslatedWrite2(ulong la, ulong value, ulong physPage, int generation) =>
        !WriteMem(la, 2, value) ? 1 : _codePageTracker.PageGeneration(physPage) != generation || _attention ? 2 : 0;

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal int TranslatedWrite4(ulong la, ulong value, ulong physPage, int generation) =>
        !WriteMem(la, 4, value) ? 1 : _codePageTracker.PageGeneration(physPage) != generation || _attention ? 2 : 0;

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal int TranslatedWrite8(ulong la, ulong value, ulong physPage, int generation) =>
        !WriteMem(la, 8, value) ? 1 : _codePageTracker.PageGeneration(physPage) != generation || _attention ? 2 : 0;

    /// <summary>A 16-byte read (SSE operands) with the current privilege; false with the fault recorded.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal bool TranslatedRead16(ulong la, out Vector128<byte> value)
    {
        if ((la & 0xFFF) <= 0xFF0)
        {
            // Inside one page: two quadword reads through the TLB fast path (same page, so the second cannot fault
            // once the first has succeeded, and reads have no side effect).
            if (!ReadMem(la, 8, out ulong lo) || !ReadMem(la + 8, 8, out ulong hi))
            {
                value = default;
                return false;
            }

            value = Vector128.Create(lo, hi).AsByte();
            return true;
        }

        Span<byte> b = stackalloc byte[16];
        if (!ReadData(la, b))
        {
            value = default;
            return false;
        }

        value = Vector128.Create((ReadOnlySpan<byte>)b);
        return true;
    }

    /// <summary>A 16-byte write (nothing written on a fault); returns as the other translated writes do.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal int TranslatedWrite16(ulong la, Vector128<byte> value, ulong physPage, int generation)
    {
        if ((la & 0xFFF) <= 0xFF0 && _mmu.CanWriteFast(la))
        {
            // Inside one RAM page the TLB allows plain writes to (no code, no MMIO): two quadword stores, neither can
            // fault.
            var q = value.AsUInt64();
            _ = WriteMem(la, 8, q.GetElement(0));
            _ = WriteMem(la + 8, 8, q.GetElement(1));
            return _attention ? 2 : 0;
        }

        Span<byte> b = stackalloc byte[16];
        Vector128.CopyTo(value, b);
        return !WriteData(la, b) ? 1 : _codePageTracker.PageGeneration(physPage) != generation || _attention ? 2 : 0;
    }

    /// <summary>Whether SSE instructions run now (CR0.EM clear, CR4.OSFXSR set, CR0.TS clear); otherwise translated code
    /// leaves the instruction to the interpreter, which raises #UD or #NM (Fpu/SimdExecutor.CheckGate).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TranslatedSseUsable() => (Cr0 & (Cr0Em | Cr0Ts)) == 0 && (Cr4 & Cr4Osfxsr) != 0;

    /// <summary>
    /// Runs one instruction of a unit in the interpreter (a helper call): 0 = go on, 1 = fault pending (RIP at the
    /// instruction), 2 = exit after it at _nextRip (it transferred control, attention was raised, or it rewrote the
    /// unit's page).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal int TranslatedExecute(ref Instruction ins, ulong rip, ulong physPage, int generation)
    {
        ulong next = rip + (ulong)ins.Length;
        Rip = rip;
        _nextRip = next;
        if (_host.Options.CollectStats && (++_interpretedSample & 63) == 0)
        {
            _stats.HelperMnemonics.AddOrUpdate(ins.Mnemonic.ToString(), 1, (_, v) => v + 1);
        }

        Execute(ins);
        if (_faultPending)
        {
            return 1;
        }

        return _nextRip != next || _attention || _codePageTracker.PageGeneration(physPage) != generation ? 2 : 0;
    }

    /// <summary>
    /// Whether the linear page <paramref name="la"/> (the page a unit's page-crossing instruction continues on, another
    /// page of a trace, or its entry page when the trace comes back to it) maps, for instruction fetch with the current privilege, to RAM page <paramref name="physPage"/> still
    /// at <paramref name="generation"/>: the condition for a unit to go on into that page (UnitCompiler.EmitPageCheck).
    /// False exits there, and the dispatcher or the interpreter fetches (and faults) as the architecture says.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal bool TranslatedPageValid(ulong la, ulong physPage, int generation)
    {
        if (_codePageTracker.PageGeneration(physPage) != generation)
        {
            return false;
        }

        ref var check = ref _pageChecks[(int)(la >> 12) & (PageCheckEntries - 1)];
        if (check.Epoch == _mmu.Epoch && check.Linear == la && check.PhysPage == physPage)
        {
            return true;
        }

        if (!_mmu.TryTranslateFetch(la, out FetchPage fetch) || !fetch.IsRam || fetch.PhysicalPage >> 12 != physPage)
        {
            return false;
        }

        // Marked as code (as every fetch page is), so a store to it moves the generation checked above.
        _mmu.MarkCodePage(fetch.PhysicalPage);
        if (_codePageTracker.PageGeneration(physPage) != generation)
        {
            return false;
        }

        check = (la, physPage, _mmu.Epoch);
        return true;
    }

    private static (ulong, ulong, long)[] InitialPageChecks()
    {
        var checks = new (ulong, ulong, long)[PageCheckEntries];
        Array.Fill(checks, (ulong.MaxValue, 0UL, -1L));
        return checks;
    }

    /// <summary>Materialises the flags and replaces CF and OF (what rotates do, InterpShift.ExecShift).</summary>
    internal void PatchCfOf(bool cf, bool of)
    {
        ulong f = MaterializeFlags() & ~(FlagCf | FlagOf);
        _flags = f | (cf ? FlagCf : 0) | (of ? FlagOf : 0);
    }

    private void InitTranslation()
    {
        var o = _host.Options;
        bool on = o.Translation && Environment.GetEnvironmentVariable("RINGVISOR_BT_TRANSLATE") != "0";
        _translationThreshold = Math.Max(1, o.TranslationThreshold);
        if (int.TryParse(Environment.GetEnvironmentVariable("RINGVISOR_BT_THRESHOLD"), out int t) && t > 0)
        {
            // Tuning aid for the benchmarks.
            _translationThreshold = t;
        }

        if (on)
        {
            _translationCache = TranslationCaches.For(_host);
            string? bg = Environment.GetEnvironmentVariable("RINGVISOR_BT_BACKGROUND");
            if (bg == "1" || (o.BackgroundTranslation && bg != "0"))
            {
                lock (_translationCache)
                {
                    _translationCache.Background ??= new BackgroundTranslator(_translationCache, _stats, o.CollectStats);
                }
            }
        }

        _verifyUnits = on && (o.VerifyUnits || Environment.GetEnvironmentVariable("RINGVISOR_BT_VERIFY") == "1");

        string? traces = Environment.GetEnvironmentVariable("RINGVISOR_BT_TRACES");
        _traces = traces == "1" || (o.Traces && traces != "0");
        _translationMode = on ? 1 : -1;
    }

    /// <summary>Whether a unit may be entered now (never with TF or RF set, in an interrupt shadow, while tracing, with
    /// a fault pending, or outside 64-bit mode).</summary>
    private bool CanEnterUnit =>
        _bitness == 64 && (_flags & (FlagTf | FlagRf)) == 0 && !_interruptShadow && _trace is null && !_faultPending;

    /// <summary>
    /// Runs <paramref name="first"/> (found by ExecuteBatch for RIP) and then the units that follow, chaining through
    /// remembered links, interpreting single instructions between units, while the batch allows. Advances
    /// <paramref name="n"/> by the instructions that ran less the caller's own increment.
    /// </summary>
    internal void RunUnits(TranslatedUnit first, ref int n, int count)
    {
        long start = _instructions;
        long limit = start + (count - n); // _instructions when the batch's budget is spent
        long interpreted = RunUnitChain(first, limit);
        long executed = _instructions - start;
        if (_host.Options.CollectStats)
        {
            _stats.AddTranslated(executed - interpreted, _translationExitCounts);
            Array.Clear(_translationExitCounts);
        }

        n += (int)Math.Max(0, executed - 1);
    }

    /// <summary>RunUnits' loop, apart so that only what the chained path needs (this vCPU, the unit, the limit, the MMU,
    /// the statistics switch) lives across the unit calls: the JIT keeps them in callee-saved registers instead of
    /// stack slots. Returns the instructions interpreted between units.</summary>
    private long RunUnitChain(TranslatedUnit first, long limit)
    {
        long interpreted = 0;
        bool collect = _host.Options.CollectStats;
        var mmu = _mmu;
        var unit = first;

        // Entered with CanEnterUnit true (ExecuteBatch checked). A unit cannot change what it tests (no mode, TF/RF,
        // interrupt-shadow or trace changes are translated; a fault exits), so it is checked again only after the
        // interpreter ran an instruction.
        while (true)
        {
            if (_verifyUnits)
            {
                VerifyUnitEntry(unit);
            }

            nint entry = unit.Entry;
            _unitGeneration = unit.Key.Generation;
            int rc = entry != 0
                ? ((delegate* managed<Cpu, ulong, long, Instruction[]?, int, int>)entry)(this, Rip & ~0xFFFUL, Math.Max(1, limit - _instructions), unit.Helpers, unit.EntryIndex)
                : unit.Code(this, Rip & ~0xFFFUL, Math.Max(1, limit - _instructions), unit.Helpers, unit.EntryIndex);
            var exit = TranslationExits.Reason(rc);
            if (collect)
            {
                _translationExitCounts[(int)exit]++;
            }

            if (exit == TranslationExit.Fault)
            {
                // As Step(): the fault recorded by the access is delivered with RIP at the faulting instruction.
                _faultPending = false;
                _setShadow = false;
                DeliverException(_faultVector, _faultHasError, _faultError, ExceptionSource.Fault);
                break;
            }

            int link = TranslationExits.Link(rc);
            if (exit == TranslationExit.Fallback)
            {
                // The instruction left to the interpreter (an access that missed the TLB, MMIO, or a case the unit
                // does not handle): run it, then look for the next unit as after an unlinked exit. A unit that does this
                // often is compiled again with its accesses calling the accessor (TranslationCache.Demote): often means
                // DemoteAfterFallbacks in a row, each within FallbackWindow instructions of the one before (a TLB
                // slot two pages of a loop keep taking from each other; MMIO polled in a loop), not the misses that
                // follow each context switch (a few per page, then none for a long while).
                long now = _instructions;
                if (now - unit.LastFallback < FallbackWindow)
                {
                    if (++unit.Fallbacks == DemoteAfterFallbacks)
                    {
                        DemoteUnit(unit);
                    }
                }
                else
                {
                    unit.Fallbacks = 0;
                }

                unit.LastFallback = now;

                interpreted += StepCounted();
                if (!CanEnterUnit)
                {
                    break;
                }

                link = 0;
            }

            if (_attention || _halted || _stopBatch || _instructions >= limit)
            {
                break;
            }

            if (link != 0)
            {
                // Chaining: the unit this exit went to last time, if that lookup still holds (same RIP, same MMU
                // state, target not evicted: a store to its page evicts it at once, TranslationCache.OnPageWritten).
                var l = unit.Links[link];
                if (l is not null && l.Rip == Rip && l.Mmu == mmu && !l.Target.Evicted &&
                    (l.Epoch == mmu.Epoch || StillMapped(ref l.Epoch, l.TargetPhysPage)))
                {
                    unit = l.Target;
                    if (collect)
                    {
                        _translationExitCounts[ChainedExitSlot]++;
                    }

                    continue;
                }
            }

            // Out of line (the chained path above stays small enough for the JIT to keep its values in registers).
            var next = NextUnitUnlinked(unit, link, limit, ref interpreted);
            if (next is null)
            {
                break;
            }

            unit = next;
        }

        return interpreted;
    }

    /// <summary>Fallback exits in a row (each within <see cref="FallbackWindow"/> instructions of the previous one)
    /// after which a unit's region is compiled again with accesses that call the accessor on a TLB miss: about a
    /// hundred microseconds of exits and interpreted steps, less than one compilation (an access whose TLB slot
    /// another page of the same loop keeps taking would otherwise exit on every iteration).</summary>
    internal const int DemoteAfterFallbacks = 256;

    /// <summary>Instructions (of this vCPU) within which a unit's fallback exit counts as following the previous one.</summary>
    private const long FallbackWindow = 256;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void DemoteUnit(TranslatedUnit unit)
    {
        if (_translationCache!.Demote(unit) && _host.Options.CollectStats)
        {
            _stats.UnitDemoted();
        }
    }

    /// <summary>One interpreted instruction; returns how many instructions it counted (0 when it faulted on fetch).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private long StepCounted()
    {
        long before = _instructions;
        Step();
        return _instructions - before;
    }

    /// <summary>
    /// RunUnits' path when an exit's link did not resolve: the per-vCPU jump cache, then the full lookup (remembered in
    /// both, the link at most <see cref="MaxLinkUpdates"/> times per exit), else interpreting single instructions until
    /// one starts a unit. Returns the unit to run next, or null when the batch must end (budget, attention, halt, stop,
    /// or a state in which no unit may be entered).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private TranslatedUnit? NextUnitUnlinked(TranslatedUnit unit, int link, long limit, ref long interpreted)
    {
        var mmu = _mmu;
        bool collect = _host.Options.CollectStats;

        // The per-vCPU jump cache (the link holds one target; a RET or an indirect jump with many targets misses it),
        // then the full lookup.
        ref var jc = ref _jumpCache[JumpCacheIndex(Rip)];
        TranslatedUnit? found;
        if (jc.Rip == Rip && jc.Unit is { Evicted: false } cached &&
            (jc.Epoch == mmu.Epoch || StillMapped(ref jc.Epoch, cached.Key.PhysPage)))
        {
            found = cached;
            if (collect)
            {
                _translationExitCounts[JumpCacheHitSlot]++;
            }
        }
        else
        {
            found = FindUnit();
            if (found is not null)
            {
                // FindUnit validated RIP's page under the current epoch (FetchSlot).
                jc = new JumpCacheEntry(Rip, mmu.Epoch, found);
            }
        }

        if (found is not null)
        {
            if (link != 0)
            {
                // FindUnit validated RIP's page under the current epoch (FetchSlot): remember it. The same target
                // found again after a flush (its page was not in the TLB) renews the link; that is no relink.
                var old = unit.Links[link];
                if (old is not null && old.Target == found && old.Rip == Rip && old.Mmu == mmu)
                {
                    old.Epoch = mmu.Epoch;
                }
                else if (unit.LinkUpdates[link] < MaxLinkUpdates)
                {
                    unit.LinkUpdates[link]++;
                    unit.Links[link] = new ChainLink(Rip, found, mmu, mmu.Epoch);
                }
            }

            return found;
        }

        // Between units (typically an instruction the translator does not cover): interpret here rather than
        // returning through the batch loop, then look for a unit again.
        while (true)
        {
            interpreted += StepCounted();
            if (_attention || _halted || _stopBatch || _instructions >= limit || !CanEnterUnit)
            {
                return null;
            }

            found = _probeNext ? FindUnit() : null;
            if (found is not null)
            {
                return found;
            }
        }
    }

    // BtOptions.VerifyUnits (or RINGVISOR_BT_VERIFY=1): every unit entry is checked against guest memory.
    private bool _verifyUnits;

    /// <summary>
    /// The verification mode's check before <paramref name="unit"/> runs at RIP: guest memory holds the bytes it was
    /// translated from, and RIP is at its entry (or side entry) offset in the page it was translated for, when the TLB
    /// says which page that is. A unit whose bytes changed must have been evicted before any path could reach it
    /// again; one that was not is a missed invalidation, reported as an internal error (the vCPU stops with it).
    /// Another vCPU's store can change the bytes just before its eviction lands (cross-modifying code, which the
    /// architecture lets run stale until the executing CPU serialises), so a mismatch counts only if the unit is still
    /// live a moment later.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void VerifyUnitEntry(TranslatedUnit unit)
    {
        var key = unit.Key;
        string? problem = null;
        if ((int)(Rip & 0xFFF) != key.EntryOffset)
        {
            problem = $"entered at page offset {Rip & 0xFFF:x3}";
        }
        else if (_mmu.CachedFetchPage(Rip) is var phys && phys != ulong.MaxValue && phys != key.PhysPage)
        {
            problem = $"RIP's page is physical page {phys:x}";
        }
        else if (!UnitMatchesMemory(unit))
        {
            Thread.Sleep(1);
            if (!unit.Evicted && !UnitMatchesMemory(unit))
            {
                problem = $"guest memory no longer holds its code bytes and it was not evicted (translated for generation {key.Generation} of its page, now {_codePageTracker.PageGeneration(key.PhysPage)})";
            }
        }

        if (problem is not null)
        {
            throw new InvalidOperationException(
                $"translated-code check (BtOptions.VerifyUnits) failed: unit bt_{key.PhysPage:x}_{key.EntryOffset:x3} (entry index {unit.EntryIndex}) at RIP {Rip:x}: {problem}");
        }
    }

    /// <summary>
    /// After an MMU epoch change (a CR3 load, an INVLPG, a privilege-class switch): whether RIP's linear page still
    /// maps to <paramref name="physPage"/> by the TLB, as FindUnit's lookup would find it; if so the cached lookup is
    /// renewed for the current epoch. A CR3 load leaves global (kernel) entries in the TLB, and a page refilled after
    /// the flush serves every link into it: without this, each link and jump-cache entry went through FindUnit once
    /// per context switch (and a link relinked that often stopped being relinked at all).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool StillMapped(ref long epoch, ulong physPage)
    {
        if (_mmu.CachedFetchPage(Rip) != physPage)
        {
            return false;
        }

        epoch = _mmu.Epoch;
        return true;
    }

    /// <summary>Records (1 in 64) the instruction about to be interpreted in 64-bit mode, for --stats.</summary>
    internal void SampleInterpretedIfDue()
    {
        if (_bitness == 64 && (++_interpretedSample & 63) == 0)
        {
            SampleInterpreted();
        }
    }

    private void SampleInterpreted()
    {
        var page = FetchSlot(out int slot);
        if (page is not null && !_faultPending)
        {
            var ins = InstructionAt(page, slot);
            string state = page.UnitSlots is not { } slots ? "cold" : slots[slot] switch
            {
                { Failed: true } => "failed",
                { Pending: true } => "pending",
                { Unit: not null } => "unit",
                _ => "cold",
            };
            string key = state + " " + ins.Mnemonic.ToString();
            if (page.Ops[slot].Kind == FastKind.Generic && ins.OpCount > 0)
            {
                key += " " + ins.GetOpKind(0) + (ins.OpCount > 1 ? "," + ins.GetOpKind(1) : string.Empty);
            }

            _stats.InterpretedMnemonics.AddOrUpdate(key, 1, (_, v) => v + 1);
        }
    }

    /// <summary>
    /// Lets go of units the shared cache dropped (a whole flush, or stale units evicted after their page was
    /// rewritten) that this vCPU's decoded pages or the chain links of live units still reference, so the GC can
    /// collect their code. Called at batch start; the work (a walk over every decoded page) happens after a flush or
    /// once <see cref="ReleaseAfterStale"/> units went stale since the last walk: nothing runs an evicted unit in the
    /// meantime (slots, links and the jump cache check Evicted), they only stay reachable a little longer. A page
    /// that mixes code and data evicts its units on every store to it, so walking after each would cost more than
    /// the memory it frees.
    /// </summary>
    private void ReleaseDroppedUnits()
    {
        var cache = _translationCache!;
        long flushes = cache.Flushes;
        long stale = cache.StaleDropped;
        if (flushes == _seenCacheFlushes && stale - _seenCacheStale < ReleaseAfterStale)
        {
            return;
        }

        _seenCacheFlushes = flushes;
        _seenCacheStale = stale;
        Array.Clear(_jumpCache);
        List<ulong>? gone = null;
        foreach (var (ppage, page) in _codePages)
        {
            if (page.Generation != _codePageTracker.PageGeneration(ppage))
            {
                // Rewritten since: never fetched through this object again.
                (gone ??= []).Add(ppage);
            }
            else if (page.UnitSlots is { } slots)
            {
                for (int i = 0; i < slots.Length; i++)
                {
                    if (slots[i].Unit is not { } unit)
                    {
                        continue;
                    }

                    if (unit.Evicted)
                    {
                        slots[i].Unit = null;
                        slots[i].Heat = 0;
                        continue;
                    }

                    var links = unit.Links;
                    for (int l = 1; l < links.Length; l++)
                    {
                        if (links[l] is { Target.Evicted: true })
                        {
                            links[l] = null;
                        }
                    }
                }
            }
        }

        if (gone is not null)
        {
            foreach (ulong ppage in gone)
            {
                _codePages.Remove(ppage);
            }

            ForgetRecentFetchPages();
        }
    }

    /// <summary>The unit to run at RIP now, or null (counting the execution towards the threshold).</summary>
    /// <remarks>
    /// The state lives beside the decoded instruction (<see cref="CodePage.UnitSlots"/>), found through the same
    /// validated fetch the interpreter uses (MMU epoch, page generation), so a slot needs no checks of its own and the
    /// lookup touches cache lines the interpreter touches anyway. (A 32K-entry table keyed by linear RIP did this
    /// before: 1.5 MiB of entries, a cache miss per lookup, FindUnit at 9% of a boot profile.)
    /// </remarks>
    private TranslatedUnit? FindUnit()
    {
        _unitProbes++;
        var page = FetchSlot(out int slot);
        if (page is null || page.Bitness != 64)
        {
            // A fetch fault (now pending), MMIO or page-crossing code: the interpreter takes it from here.
            return null;
        }

        var slots = page.UnitSlots ??= new UnitSlot[page.Capacity];
        ref var e = ref slots[slot];
        if (e.Unit is { } unit)
        {
            if (!unit.Evicted)
            {
                return unit;
            }

            e.Unit = null;
            e.Heat = 0;
        }

        if (e.Failed)
        {
            // Not translatable while the page keeps its contents (a rewrite gives a new CodePage).
            return null;
        }

        int heat = ++e.Heat;
        if (e.Pending)
        {
            return (heat & 15) == 0 ? PollPending(ref e, page) : null;
        }

        if (heat < _translationThreshold)
        {
            // Warm: another vCPU, or this one before the page was decoded again, may have translated it already.
            return heat == ProbeHeat ? ProbeCache(ref e, page) : null;
        }

        if (_translationCache!.Background is { } background)
        {
            return RequestBackground(ref e, page, background);
        }

        var u = GetOrTranslate(page, (int)(Rip & 0xFFF), out bool rejected);
        if (u is null)
        {
            // Not translatable here: stop counting. Otherwise (the page changed meanwhile) count again from zero.
            e.Failed = rejected;
            e.Heat = 0;
            return null;
        }

        e.Unit = u;
        return u;
    }

    private TranslatedUnit? RequestBackground(ref UnitSlot e, CodePage p, BackgroundTranslator background)
    {
        var cache = _translationCache!;
        var key = new UnitKey(p.PhysPage, p.Generation, p.Bitness, (int)(Rip & 0xFFF));
        if (CachedUnit(key) is { } u)
        {
            e.Unit = u;
            return u;
        }

        if (cache.IsRejected(key))
        {
            e.Failed = true;
            return null;
        }

        if (_host.Memory.GetHostPointer(p.PhysPage << 12, 0x1000) == 0)
        {
            e.Failed = true;
            return null;
        }

        // The region is chosen here (it needs this vCPU's decoded instructions); only emit + JIT go to the worker.
        var copy = new byte[0x1000 + CrossingPage.MaxBytes];
        var instructions = BuildRegion(p, key.EntryOffset, copy, out var crossing, out var otherPages);
        if (instructions is null)
        {
            // Rewritten since it was decoded: the bytes may not be what the key says. Count again.
            e.Heat = 0;
            return null;
        }

        if (instructions.Count == 0)
        {
            cache.Reject(key);
            e.Failed = true;
            if (_host.Options.CollectStats)
            {
                _stats.TranslationRejectedOnce();
            }

            return null;
        }

        // Only the entry page's instruction bytes wait in the queue (not the whole page copy: ~4 KiB less per queued
        // unit, hundreds of which can wait during a boot).
        var (start, end) = UnitCompiler.EntryPageSource(instructions);
        int[] joins = [.. UnitCompiler.JoinOffsets(instructions, key.EntryOffset)]; // before the worker may take the list
        background.Request(key, instructions, copy.AsSpan(start, end - start).ToArray(), start, crossing, otherPages);
        e.Pending = true;
        e.PendingEntry = (short)key.EntryOffset;
        var slots = p.UnitSlots!;
        foreach (var ui in instructions)
        {
            if (ui.Offset is < 0 or >= 0x1000)
            {
                continue; // another page of the trace
            }

            int s = p.SlotAt(ui.Offset);
            if (s != 0 && s <= slots.Length && slots[s - 1] is { Unit: null, Failed: false, Pending: false })
            {
                slots[s - 1].Pending = true;
                slots[s - 1].PendingEntry = (short)key.EntryOffset;
            }
        }

        foreach (int join in joins)
        {
            int s = p.SlotAt(join);
            if (s != 0 && s <= slots.Length && slots[s - 1].Pending && slots[s - 1].PendingEntry == key.EntryOffset)
            {
                slots[s - 1].PendingJoin = true;
            }
        }

        return null;
    }

    /// <summary>Looks whether the background translator finished (or rejected) a pending entry.</summary>
    private TranslatedUnit? PollPending(ref UnitSlot e, CodePage p)
    {
        var cache = _translationCache!;
        bool entry = e.PendingEntry == (int)(Rip & 0xFFF);
        var key = new UnitKey(p.PhysPage, p.Generation, p.Bitness, e.PendingEntry);
        if (cache.TryGet(key, out var u) && !u!.Evicted && UnitMatchesMemory(u))
        {
            e.Pending = false;
            if (!entry)
            {
                // Inside the finished unit's region: entered here when it is one of the unit's side entries (the cache
                // holds it under this offset, TranslationCache.Add); otherwise reached through its entry from now on,
                // counting again from zero.
                if (cache.TryGet(key with { EntryOffset = (int)(Rip & 0xFFF) }, out var side) && !side!.Evicted)
                {
                    e.Unit = side;
                    return side;
                }

                e.Heat = 0;
                return null;
            }

            e.Unit = u;

            // The worker adds units without the page tracker: sweep units of rewritten pages from here (every 256).
            cache.SweepStaleIfDue(_codePageTracker);
            if (_host.Options.CollectStats)
            {
                _stats.SetStaleUnitsDropped(cache.StaleDropped);
            }

            return u;
        }

        if (cache.IsRejected(key))
        {
            e.Pending = false;
            e.Failed = entry;
            e.Heat = 0;
            return null;
        }

        if (!cache.Background!.Touch(key))
        {
            // Dropped (queue full) or evicted right after translation: count again.
            e.Pending = false;
            e.Heat = 0;
        }

        return null;
    }

    private TranslatedUnit? ProbeCache(ref UnitSlot e, CodePage p)
    {
        var key = new UnitKey(p.PhysPage, p.Generation, p.Bitness, (int)(Rip & 0xFFF));
        if (CachedUnit(key) is not { } u)
        {
            return null;
        }

        e.Unit = u;
        return u;
    }

    /// <summary>
    /// The shared cache's unit for <paramref name="key"/> when memory still holds its bytes; otherwise one translated
    /// for an earlier generation of the page at the same entry whose bytes are unchanged, taken over for this
    /// generation (QEMU invalidates only the blocks a write overlaps; here a write bumps the whole page, and this finds
    /// the units it did not touch: the kernel patching its text at boot, data sharing a page with code).
    /// </summary>
    private TranslatedUnit? CachedUnit(UnitKey key)
    {
        var cache = _translationCache!;
        if (cache.TryGet(key, out var u) && !u!.Evicted && UnitMatchesMemory(u))
        {
            return u;
        }

        // The page was marked as code before its generation was read (LookupPage), so a store since bumps it: the
        // bytes compared are the key's when the generation still holds after the compare.
        if (cache.Earlier(key) is not { } earlier || !UnitMatchesMemory(earlier) ||
            _codePageTracker.PageGeneration(key.PhysPage) != key.Generation)
        {
            return null;
        }

        var again = cache.Add(earlier.ForGeneration(key.Generation));
        if (_host.Options.CollectStats)
        {
            _stats.UnitReused();
        }

        return again;
    }

    /// <summary>Whether guest memory still holds the bytes <paramref name="unit"/> was translated from.</summary>
    private bool UnitMatchesMemory(TranslatedUnit unit)
    {
        nint host = _host.Memory.GetHostPointer(unit.Key.PhysPage << 12, 0x1000);
        int inPage = Math.Min(unit.Source.Length, 0x1000 - unit.SourceStart);
        // SAFETY: host maps the whole 4 KiB page; SourceStart + inPage <= 4096.
        if (host == 0 || !new ReadOnlySpan<byte>((byte*)host + unit.SourceStart, inPage).SequenceEqual(unit.Source.AsSpan(0, inPage)))
        {
            return false;
        }

        if (unit.Crossing is not { } crossing)
        {
            return true;
        }

        // The page-crossing instruction's bytes on the next page (which the unit checks it still maps to at run time).
        int rest = unit.Source.Length - inPage;
        nint next = _host.Memory.GetHostPointer(crossing.PhysPage << 12, 0x1000);
        // SAFETY: next maps the whole 4 KiB page; rest <= 15.
        return next != 0 && new ReadOnlySpan<byte>((byte*)next, rest).SequenceEqual(unit.Source.AsSpan(inPage));
    }

    /// <summary>
    /// Copies page <paramref name="p"/> (RAM at <paramref name="host"/>) into <paramref name="buffer"/> (4096 +
    /// <see cref="CrossingPage.MaxBytes"/> bytes) and chooses the region entered at <paramref name="entry"/> from the
    /// instructions this vCPU has run there; null when the page was rewritten since it was decoded.
    /// </summary>
    private List<UnitInstruction>? BuildRegion(CodePage p, int entry, byte[] buffer, out CrossingPage? crossing, out List<RegionPage> otherPages)
    {
        otherPages = [];
        crossing = null;
        if (!TryCopyCode(p.PhysPage, p.Generation, buffer.AsSpan(0, 0x1000)))
        {
            return null;
        }

        crossing = ReadCrossingPage(p, buffer);

        _executedPage = p;
        _executedCrossing = crossing is null ? -1 : p.CrossingOffset;
        _regionBase = Rip & ~0xFFFUL;
        return UnitBuilder.Build(buffer, entry, _regionMayTake, 0x1000 + (crossing is null ? 0 : CrossingPage.MaxBytes),
            _traces ? _otherRegionPage ??= OtherRegionPage : null, out otherPages);
    }

    // Traces across pages (UnitBuilder, RegionPage; BtOptions.Traces).
    private bool _traces;
    private Func<int, RegionPage?>? _otherRegionPage;
    private ulong _regionBase;

    /// <summary>
    /// The page <paramref name="delta"/> bytes from the entry page of the region being built (RIP's page), for the
    /// region to continue on: RAM executable now (no fault is raised: this only looks), its bytes copied at a known
    /// generation, and which offsets this vCPU's interpreter has decoded there (the region follows only those,
    /// unless every reachable instruction is translated at once). Null where the region must stop.
    /// </summary>
    private RegionPage? OtherRegionPage(int delta)
    {
        ulong la = _regionBase + (ulong)(long)delta;
        if (!IsCanonical(la) || !_mmu.TryTranslateFetch(la, out FetchPage fetch) || !fetch.IsRam)
        {
            return null;
        }

        _mmu.MarkCodePage(fetch.PhysicalPage);
        ulong phys = fetch.PhysicalPage >> 12;
        int generation = _codePageTracker.PageGeneration(phys);
        Func<int, bool>? executed = null;
        if (_translationThreshold > 1)
        {
            if (!_codePages.TryGetValue(phys, out var decoded) || decoded.Generation != generation || decoded.Bitness != 64)
            {
                return null;
            }

            executed = off => decoded.SlotAt(off) != 0;
        }

        var bytes = new byte[0x1000];
        return TryCopyCode(phys, generation, bytes) ? new RegionPage(delta, phys, generation, bytes, executed) : null;
    }

    /// <summary>
    /// Copies the first bytes of RAM page <paramref name="physPage"/> into <paramref name="destination"/> when the page
    /// is at <paramref name="generation"/> before and after the copy (false: not RAM, or rewritten meanwhile).
    /// </summary>
    private bool TryCopyCode(ulong physPage, int generation, Span<byte> destination)
    {
        nint host = _host.Memory.GetHostPointer(physPage << 12, 0x1000);
        if (host == 0 || _codePageTracker.PageGeneration(physPage) != generation)
        {
            return false;
        }

        // SAFETY: host maps the whole 4 KiB RAM page; destination is at most a page.
        new ReadOnlySpan<byte>((byte*)host, destination.Length).CopyTo(destination);
        return _codePageTracker.PageGeneration(physPage) == generation;
    }

    /// <summary>
    /// The next page's first bytes appended to <paramref name="buffer"/> (a copy of <paramref name="page"/>) when the
    /// page's page-crossing instruction is cached and still valid (same MMU epoch, next page not rewritten), so a
    /// region can take that instruction; null otherwise.
    /// </summary>
    private CrossingPage? ReadCrossingPage(CodePage page, byte[] buffer)
    {
        if (page.CrossingOffset < 0 || page.CrossingEpoch != _mmu.Epoch)
        {
            return null;
        }

        ulong next = page.CrossingPhysPage;
        int generation = page.CrossingGeneration;
        return TryCopyCode(next, generation, buffer.AsSpan(0x1000, CrossingPage.MaxBytes)) ? new CrossingPage(next, generation) : null;
    }

    /// <summary>Whether the interpreter has run the instruction at page offset <paramref name="offset"/> of the page
    /// being translated (it was fetched and decoded into that page, or is its cached page-crossing instruction).</summary>
    private bool ExecutedInPage(int offset) => (_executedPage is not { } p || p.SlotAt(offset) != 0) || offset == _executedCrossing;

    /// <summary>Whether the region being built may take the instruction at <paramref name="offset"/> of its page: one
    /// this vCPU has run (see <see cref="ExecutedInPage"/>) that is not where another unit is entered (its entry or
    /// side entry, live in the cache, or the entry or a join of a region queued for the worker). The region ends there
    /// and its exit chains to that unit, instead of compiling that unit's code a second time.</summary>
    private bool RegionMayTake(int offset)
    {
        if (_translationThreshold > 1 && !ExecutedInPage(offset))
        {
            return false;
        }

        if (_executedPage is not { } p || offset is < 0 or >= 0x1000)
        {
            return true;
        }

        int s = p.SlotAt(offset);
        if (p.UnitSlots is { } slots && s != 0 && s <= slots.Length && slots[s - 1].Pending && (slots[s - 1].PendingEntry == offset || slots[s - 1].PendingJoin))
        {
            return false;
        }

        return !(_translationCache!.TryGet(new UnitKey(p.PhysPage, p.Generation, p.Bitness, offset), out var u) && !u!.Evicted);
    }

    private TranslatedUnit? GetOrTranslate(CodePage page, int offset, out bool rejected)
    {
        rejected = false;
        var cache = _translationCache!;
        var key = new UnitKey(page.PhysPage, page.Generation, page.Bitness, offset);
        if (CachedUnit(key) is { } existing)
        {
            return existing;
        }

        long t0 = Stopwatch.GetTimestamp();
        if (_host.Memory.GetHostPointer(page.PhysPage << 12, 0x1000) == 0)
        {
            rejected = true;
            return null;
        }

        var instructions = BuildRegion(page, offset, _translationPage, out var crossing, out var otherPages);
        if (instructions is null)
        {
            // Rewritten since it was decoded: the bytes may not be what the key says.
            return null;
        }

        if (instructions.Count == 0)
        {
            rejected = true;
            if (_host.Options.CollectStats)
            {
                _stats.TranslationRejectedOnce();
            }

            return null;
        }

        var unit = UnitCompiler.Compile(instructions, key, _translationPage, crossing, otherPages, callOnMiss: _translationCache!.IsDemoted(key.PhysPage, key.EntryOffset));
        if (_codePageTracker.PageGeneration(page.PhysPage) != page.Generation)
        {
            return null;
        }

        unit = cache.Add(unit);
        cache.SweepStaleIfDue(_codePageTracker);
        if (_host.Options.CollectStats)
        {
            _stats.UnitTranslated(instructions.Count, Stopwatch.GetTimestamp() - t0, cache.Bytes, cache.Flushes);
            _stats.SetStaleUnitsDropped(cache.StaleDropped);
        }

        return unit;
    }
}
