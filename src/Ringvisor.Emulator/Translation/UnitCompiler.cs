// Compiles a unit (UnitBuilder's instructions of one 4 KiB page) into a DynamicMethod that RyuJIT turns into host
// code. Guest registers live in IL locals (loaded at entry, stored at every exit); RIP is a page-relative constant
// per instruction; the lazy-flag state is committed into the Cpu's fields, with what is known about it at translation
// time (the last writer's operation and size, the locals holding its operands), so Jcc/SETcc/CMOVcc after
// CMP/SUB/TEST compare the operands directly, and flag commits nothing reads are left out. Each
// instruction is emitted as loads, compute, stores, then commit of registers and flags, so a faulting access exits
// with the state from before that instruction (precise exceptions). Per-instruction semantics mirror
// Instructions/InterpFast.cs, the reference; the emitters are grouped by family in the partial files beside this one.
using System.Reflection;
using System.Reflection.Emit;
using Iced.Intel;
using Instruction = Iced.Intel.Instruction;
using Label = System.Reflection.Emit.Label;
using Ringvisor.Emulator.Decoding;
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator.Translation;

internal sealed partial class UnitCompiler
{
    private const int PageSize = 4096;

    // Rough host code bytes per IL byte plus per-method overhead, for the cache budget (an estimate, not a measurement
    // of the JIT's output).
    private const int BytesPerIlByte = 2;
    private const int MethodOverheadBytes = 512;

    private readonly List<UnitInstruction> _ins;
    private readonly Dictionary<int, int> _index = [];

    // A trace's pages other than the entry page, by distance from it (UnitBuilder, RegionPage).
    private readonly Dictionary<int, RegionPage> _pages = [];

    // Offsets of the unit's instructions that follow one of its CALLs (at most MaxReturnSites): where its RETs may
    // continue inside the unit (EmitReturnPrediction).
    private readonly List<int> _returnSites = [];
    private const int MaxReturnSites = 4;
    private readonly int _entry;
    private readonly ulong _physPage;
    private readonly int _generation;
    private readonly List<ExitStub> _stubs = [];
    private readonly LocalBuilder?[] _reg = new LocalBuilder?[16];
    private readonly bool[] _regUsed = new bool[16];
    private readonly bool[] _regWritten = new bool[16];
    private readonly bool[] _leader;
    private readonly int[] _blockPos;
    private readonly int[] _blockLen;
    private ILGenerator _il = null!;
    private Label[] _labels = [];
    private Label _epilogue;
    private LocalBuilder _icount = null!;
    private LocalBuilder _exitRip = null!;
    private LocalBuilder _exitReason = null!;
    private LocalBuilder _t0 = null!, _t1 = null!, _t2 = null!, _t3 = null!, _la = null!, _val = null!, _w = null!;
    private LocalBuilder _c0 = null!;
    private int _k;
    private int _linkCount;
    private CrossingPage? _crossing;
    private LocalBuilder? _deferredCf, _deferredOf, _deferredPending;
    private Label? _deferredFix;
    private readonly List<Label> _deferredFixes = [];
    private int _currentSet = -1;
    private LocalBuilder? _farNext;
    private LocalBuilder _curOff = null!, _curNext = null!, _curAdj = null!, _status = null!, _rv = null!;
    private LocalBuilder _ra = null!, _rv2 = null!, _eref = null!, _tlbBase = null!, _wa = null!, _wv = null!;
    private LocalBuilder _curPacked = null!;
    private Label _faultExit;
    private Label _storeExit;
    private bool _faultExitUsed;
    private bool _storeExitUsed;

    // In front of the shared exits: unpack the current instruction's exit data (see EnsureCurrent); a plain store's
    // single status branch lands on _storeOrFault, which picks the exit.
    private Label _faultUnpack;
    private Label _missExit, _missUnpack;
    private bool _missExitUsed;

    // A demoted region (TranslationCache.Demote): every access calls the accessor on a TLB miss.
    private bool _callOnMiss;

    /// <summary>Whether the current instruction's accesses leave the unit on a TLB miss (<see cref="MissExit"/>) rather
    /// than call the accessor.</summary>
    private bool UsesMissExit => !_callOnMiss && !_faultFixup[_k];

    /// <summary>
    /// Where a load's or store's slow path goes (a TLB miss, MMIO, an access straddling two pages, a store to a page
    /// holding code or not yet dirty): out of the unit, leaving the instruction to the interpreter from its start (a
    /// Fallback exit with the state from before it, as a fault exit has), instead of calling the accessor. With no
    /// call on the hot path the JIT keeps the values live across an access in registers (a call's caller-saved
    /// registers made it spill them around every access, and reload them on the main path too). Inside a deferred
    /// flag writer's region the exit commits the writer's state first, as its fault exits do (WriterFix). Null in a
    /// demoted region and after a deferred rotate (its fault exits patch CF/OF on the way out): such accesses call the
    /// accessor.
    /// </summary>
    private Label? MissExit()
    {
        if (!UsesMissExit)
        {
            return null;
        }

        _missExitUsed = true;
        return _deferActive ? WriterFix(_missUnpack) : _missUnpack;
    }
    private Label _storeUnpack;
    private Label _storeOrFault;
    private bool _storeOrFaultUsed;

    // A DynamicMethod keeps its ILGenerator (the IL stream, labels, fixups) after it is compiled, although the runtime
    // took its own copy of the IL when the method was first made callable and never asks the generator again: ~11 MiB
    // of live heap on the benchmark boot (live managed heap 46 -> 35 MiB with it dropped). No public API lets it go, so
    // the field is cleared by reflection; where a runtime names it differently this is null and nothing is dropped.
    private static readonly FieldInfo? s_dynamicMethodIlGenerator =
        typeof(DynamicMethod).GetField("_ilGenerator", BindingFlags.NonPublic | BindingFlags.Instance) is { } f &&
        f.FieldType.IsAssignableTo(typeof(ILGenerator)) ? f : null;

    // What the compiled method's DynamicResolver still holds for the JIT (which reads it once, through the dry run):
    // the baked IL (~2 KiB a unit) and the token table (a boxed handle per field, method and type reference, with no
    // sharing between tokens of the same member). Dropped once compiled, like the ILGenerator; absent fields (another
    // runtime) leave them in place.
    private static readonly FieldInfo? s_dynamicMethodResolver =
        typeof(DynamicMethod).GetField("_resolver", BindingFlags.NonPublic | BindingFlags.Instance);

    private static readonly FieldInfo? s_resolverCode =
        s_dynamicMethodResolver?.FieldType.GetField("m_code", BindingFlags.NonPublic | BindingFlags.Instance) is { } f &&
        f.FieldType == typeof(byte[]) ? f : null;

    private static readonly FieldInfo? s_resolverScope =
        s_dynamicMethodResolver?.FieldType.GetField("m_scope", BindingFlags.NonPublic | BindingFlags.Instance);

    private static readonly FieldInfo? s_scopeTokens =
        s_resolverScope?.FieldType.GetField("m_tokens", BindingFlags.NonPublic | BindingFlags.Instance) is { } f &&
        f.FieldType == typeof(List<object?>) ? f : null;

    private static readonly MethodInfo? s_getMethodDescriptor =
        typeof(DynamicMethod).GetMethod("GetMethodDescriptor", BindingFlags.NonPublic | BindingFlags.Instance, Type.EmptyTypes) is { } m &&
        m.ReturnType == typeof(RuntimeMethodHandle) ? m : null;

    /// <summary>The entry point of a compiled dynamic method (its runtime method handle's function pointer), or 0.</summary>
    internal static nint EntryPoint(DynamicMethod method)
    {
        try
        {
            return s_getMethodDescriptor?.Invoke(method, null) is RuntimeMethodHandle h ? h.GetFunctionPointer() : 0;
        }
        catch (TargetInvocationException)
        {
            return 0;
        }
    }

    /// <summary>Lets the GC take the IL bytes and token table a compiled unit's resolver keeps (the method is never
    /// compiled again: dynamic methods are not tiered). A later JIT request would find no IL and fail with
    /// InvalidProgramException rather than run stale code.</summary>
    internal static void DropResolverCopies(DynamicMethod method)
    {
        if (s_dynamicMethodResolver?.GetValue(method) is not { } resolver)
        {
            return;
        }

        s_resolverCode?.SetValue(resolver, Array.Empty<byte>());
        if (s_resolverScope?.GetValue(resolver) is { } scope && s_scopeTokens?.GetValue(scope) is List<object?> tokens)
        {
            // Token 0 is the scope's own placeholder; keep the list's shape.
            tokens.RemoveRange(1, tokens.Count - 1);
            tokens.TrimExcess();
        }
    }

    private UnitCompiler(List<UnitInstruction> instructions, int entry, ulong physPage, int generation)
    {
        _ins = instructions;
        _entry = entry;
        _physPage = physPage;
        _generation = generation;
        for (int i = 0; i < _ins.Count; i++)
        {
            _index[_ins[i].Offset] = i;
        }

        foreach (var ui in _ins)
        {
            if (ui.Op.Kind == FastKind.CallRel && _returnSites.Count < MaxReturnSites && _index.ContainsKey(ui.NextOffset))
            {
                _returnSites.Add(ui.NextOffset);
            }
        }

        _leader = new bool[_ins.Count];
        _blockPos = new int[_ins.Count];
        _blockLen = new int[_ins.Count];
    }

    /// <summary>Compiles <paramref name="instructions"/> (sorted by offset, containing the entry) to IL and lets the JIT
    /// compile it (through a dry run), so the first real run costs nothing extra.</summary>
    /// <remarks>A page-crossing instruction among <paramref name="instructions"/> needs <paramref name="crossing"/>
    /// (what the next page held when the region was chosen; <paramref name="page"/> continues with its bytes).</remarks>
    /// <remarks><paramref name="page"/> may hold only part of the page, from page offset <paramref name="pageOffset"/>
    /// (the bytes of the entry page's instructions are all it needs).</remarks>
    public static TranslatedUnit Compile(List<UnitInstruction> instructions, UnitKey key, byte[] page, CrossingPage? crossing = null, IReadOnlyList<RegionPage>? otherPages = null, int pageOffset = 0, bool callOnMiss = false)
    {
        var (sourceStart, sourceEnd) = EntryPageSource(instructions);
        byte[] source = page.AsSpan(sourceStart - pageOffset, sourceEnd - sourceStart).ToArray();
        // Helper instructions get their index in the table the unit is called with.
        var helpers = new List<Instruction>();
        foreach (var ui in instructions)
        {
            if (NeedsHelperSlot(ui))
            {
                ui.Op.Imm = (ulong)helpers.Count;
                helpers.Add(ui.Instruction);
            }
        }

        if (crossing is null && sourceEnd > PageSize)
        {
            throw new InvalidOperationException("translator: a page-crossing instruction without its next page");
        }

        var c = new UnitCompiler(instructions, key.EntryOffset, key.PhysPage, key.Generation) { _crossing = crossing, _callOnMiss = callOnMiss };
        foreach (var rp in otherPages ?? [])
        {
            c._pages[rp.Delta] = rp;
        }

        string name = $"bt_{key.PhysPage:x}_{key.EntryOffset:x3}";
        if (s_dumpFilter is { } filter && filter.Any(f => name.Contains(f, StringComparison.Ordinal)))
        {
            DumpGuestCode(name, instructions, key.EntryOffset);
        }

        var method = new DynamicMethod(
            name,
            typeof(int),
            [typeof(Cpu), typeof(ulong), typeof(long), typeof(Instruction[]), typeof(int)],
            typeof(Cpu),
            skipVisibility: true);
        var il = method.GetILGenerator(256 + instructions.Count * 96);
        c.Emit(il);
        int bytes = (il.ILOffset * BytesPerIlByte) + MethodOverheadBytes;
        var code = (UnitCode)method.CreateDelegate(typeof(UnitCode));
        _ = code(null!, 0, -1, null, 0);
        nint entry = EntryPoint(method);
        s_dynamicMethodIlGenerator?.SetValue(method, null);
        DropResolverCopies(method);
        return new TranslatedUnit(key, code, instructions.Count, bytes, sourceStart, source, helpers.Count > 0 ? [.. helpers] : null, c._linkCount)
        {
            Crossing = sourceEnd > PageSize ? crossing : null,
            Entry = entry,
            SideEntries = c._sideEntries.Count > 0 ? [.. c._sideEntries.Select(i => instructions[i].Offset)] : null,
            CallsOnMiss = callOnMiss,
        };
    }

    /// <summary>The page offsets spanned by the bytes of the entry page's instructions (a trace's other pages are
    /// checked by generation on every edge into them): what a unit keeps to compare with memory, and all of the page
    /// that <see cref="Compile"/> needs.</summary>
    internal static (int Start, int End) EntryPageSource(List<UnitInstruction> instructions)
    {
        int start = PageSize, end = 0;
        foreach (var ui in instructions)
        {
            if (ui.Offset is >= 0 and < PageSize)
            {
                start = Math.Min(start, ui.Offset);
                end = Math.Max(end, ui.NextOffset);
            }
        }

        return (start, end);
    }

    // RINGVISOR_BT_DUMP=text[,text...]: the guest instructions of each unit whose method name (bt_<page>_<entry>, as
    // profilers and DOTNET_JitDisasm show it) contains one of the texts go to stderr when it is compiled (a debugging
    // aid, like QEMU's -d in_asm).
    private static readonly string[]? s_dumpFilter =
        Environment.GetEnvironmentVariable("RINGVISOR_BT_DUMP") is { Length: > 0 } d ? d.Split(',') : null;

    private static void DumpGuestCode(string name, List<UnitInstruction> instructions, int entry)
    {
        var text = new System.Text.StringBuilder();
        text.Append($"{name}: {instructions.Count} instructions, entry {entry:x3}\n");
        foreach (var ui in instructions)
        {
            text.Append($"  {ui.Offset:x3}{(ui.Offset == entry ? '>' : ' ')} {ui.Instruction}\n");
        }

        Console.Error.Write(text.ToString());
    }

    private UnitInstruction Cur => _ins[_k];

    private void Emit(ILGenerator il)
    {
        _il = il;
        ScanRegisters();
        ComputeBlocks();
        ScanJoins();
        ScanFlagLiveness();
        DeclareLocals();
        _labels = new Label[_ins.Count];
        for (int i = 0; i < _ins.Count; i++)
        {
            _labels[i] = il.DefineLabel();
        }

        _epilogue = il.DefineLabel();
        _faultExit = il.DefineLabel();
        _storeExit = il.DefineLabel();
        _faultUnpack = il.DefineLabel();
        _missExit = il.DefineLabel();
        _missUnpack = il.DefineLabel();
        _storeUnpack = il.DefineLabel();
        _storeOrFault = il.DefineLabel();

        // A negative budget is a dry run that returns at once: it makes the JIT compile the method (on the translating
        // thread) without touching a vCPU.
        var run = il.DefineLabel();
        il.Emit(OpCodes.Ldarg_2);
        il.Emit(OpCodes.Ldc_I8, 0L);
        il.Emit(OpCodes.Bge, run);
        il.Emit(OpCodes.Ldc_I4_M1);
        il.Emit(OpCodes.Ret);
        il.MarkLabel(run);
        EmitPrologue();
        EmitEntrySwitch();
        for (_k = 0; _k < _ins.Count; _k++)
        {
            il.MarkLabel(_labels[_k]);
            if (_deferActive && (_leader[_k] || !AllowedWhileDeferred(_k)))
            {
                // Reached only by falling through from the instruction before (a leader's commit, where its flags are
                // live, was emitted on that path: EndDeferredRegion); an instruction the region does not allow gets
                // the state committed first.
                if (_leader[_k])
                {
                    throw new InvalidOperationException("translator: a deferred flag writer's region reaches a block leader");
                }

                CommitDeferredNow();
            }

            if (_leader[_k])
            {
                _il.Emit(OpCodes.Ldloc, _icount);
                _il.Emit(OpCodes.Ldc_I8, (long)_blockLen[_k]);
                _il.Emit(OpCodes.Add);
                _il.Emit(OpCodes.Stloc, _icount);
                if (_joins[_k])
                {
                    ForgetFlags();
                }
            }

            if (CrossesPage(Cur))
            {
                EmitCrossingGuard();
            }

            bool falls = EmitInstruction(Cur);
            if (falls)
            {
                if (_pendingReset[_k] && _deferredPending is not null)
                {
                    LdI4(0);
                    St(_deferredPending);
                }

                EmitFallThrough();
            }

            EndDeferredRegion(falls);
        }

        foreach (var s in _stubs)
        {
            EmitStub(s);
        }

        EmitMissBlocks();
        EmitDeferredRotateFixes();
        EmitWriterFixes();
        EmitUnpackExits();
        EmitSharedExits();

        EmitEpilogue();
        BtStats.UnitIlEmitted(il.ILOffset, _ins.Count);
    }

    private void ScanRegisters()
    {
        foreach (var ui in _ins)
        {
            ref var op = ref ui.Op;
            void Use(int r)
            {
                if (r < 16)
                {
                    _regUsed[r] = true;
                }
            }

            void Write(int r)
            {
                if (r < 16)
                {
                    _regUsed[r] = true;
                    _regWritten[r] = true;
                }
            }

            if (ui.Extra != UnitExtra.None)
            {
                ScanExtra(ui, Use, Write);
                continue;
            }

            Use(op.Base);
            Use(op.Index);
            switch (op.Kind)
            {
                case FastKind.Nop:
                case FastKind.Jcc:
                case FastKind.Jmp:
                    break;
                case FastKind.CallRel:
                case FastKind.Ret:
                    Write(4);
                    break;
                case FastKind.PushR:
                    Use(op.Src);
                    Write(4);
                    break;
                case FastKind.PopR:
                    Write(4);
                    Write(op.Dst);
                    break;
                case FastKind.MovMR:
                case FastKind.AluMR:
                case FastKind.TestMR:
                case FastKind.TestRR:
                    Use(op.Src);
                    Use(op.Dst);
                    break;
                case FastKind.MovMI:
                case FastKind.AluMI:
                case FastKind.TestMI:
                case FastKind.TestRI:
                    Use(op.Dst);
                    break;
                default:
                    Use(op.Src);
                    Write(op.Dst);
                    break;
            }
        }
    }

    private void ComputeBlocks()
    {
        int n = _ins.Count;
        _leader[_index[_entry]] = true;
        for (int k = 0; k < n; k++)
        {
            var ui = _ins[k];
            bool falls = FallsThrough(ui);
            // A block ends after a conditional branch to an instruction of the unit (the taken edge enters another
            // block, which counts its own instructions). A Jcc whose taken edge leaves the unit exits through a stub
            // that subtracts the rest of the block, like any early exit, so the block goes on after it (one count
            // update less per such Jcc).
            bool endsBlock = ui.Op.Kind == FastKind.Jcc && TryIndex(ui.BranchTarget, out _);
            bool contiguous = falls && !endsBlock && Contiguous(k);
            if (k + 1 < n && !contiguous)
            {
                _leader[k + 1] = true;
            }

            if (falls && !contiguous && _index.TryGetValue(ui.NextOffset, out int j))
            {
                _leader[j] = true;
            }

            if (HasTarget(ui) && TryIndex(ui.BranchTarget, out int t))
            {
                _leader[t] = true;
            }
        }

        int start = 0;
        for (int k = 1; k <= n; k++)
        {
            if (k == n || _leader[k])
            {
                for (int i = start; i < k; i++)
                {
                    _blockPos[i] = i - start;
                    _blockLen[i] = k - start;
                }

                start = k;
            }
        }
    }

    private static bool FallsThrough(UnitInstruction ui) =>
        ui.Op.Kind is not (FastKind.Jmp or FastKind.CallRel or FastKind.Ret) && !ExtraEndsPath(ui.Extra);

    private static int PageDelta(long offset) => (int)(offset & ~(long)(PageSize - 1));

    /// <summary>The unit's instruction at <paramref name="offset"/>, if any.</summary>
    private bool TryIndex(long offset, out int j)
    {
        j = -1;
        return offset is >= int.MinValue and <= int.MaxValue && _index.TryGetValue((int)offset, out j);
    }

    /// <summary>Whether instruction k + 1 follows instruction k in memory on the same page (a fall-through into
    /// another page of a trace is an edge with a guard, see EmitGoto).</summary>
    private bool Contiguous(int k) => Contiguous(_ins, k);

    private static bool Contiguous(List<UnitInstruction> ins, int k) =>
        k + 1 < ins.Count && ins[k + 1].Offset == ins[k].NextOffset && PageDelta(ins[k + 1].Offset) == PageDelta(ins[k].Offset);

    /// <summary>Pushes the physical page and generation of the current instruction's page (what a store or helper
    /// call checks for self-modifying code: the unit exits when that page changed).</summary>
    private void LdCurrentPage()
    {
        int delta = PageDelta(Cur.Offset);
        var (phys, generation) = PageIdentity(delta);
        LdI8(phys);
        if (delta == 0)
        {
            // The unit's own page: whichever generation the dispatcher entered it under (TranslatedUnit.ForGeneration).
            _il.Emit(OpCodes.Ldarg_0);
            _il.Emit(OpCodes.Ldfld, Cpu.FieldUnitGeneration);
        }
        else
        {
            LdI4(generation);
        }
    }

    /// <summary>
    /// On an edge from the current instruction into another page of the trace: continue only while that page's linear
    /// address (relative to the entry page) still maps, for instruction fetch now, to the physical page its code came
    /// from, unchanged since (Cpu.TranslatedPageValid); otherwise exit to <paramref name="target"/>.
    /// </summary>
    private void EmitPageGuard(long target, TranslationExit reason)
    {
        int delta = PageDelta(target);
        var (phys, generation) = PageIdentity(delta);
        EmitPageCheck(delta, phys, generation, Stub(reason, target, false, AdjustAfter));
    }

    /// <summary>The physical page and generation the unit's code at page distance <paramref name="delta"/> came from.</summary>
    private (ulong PhysPage, int Generation) PageIdentity(int delta) =>
        delta != 0 && _pages.TryGetValue(delta, out var rp) ? (rp.PhysPage, rp.Generation) : (_physPage, _generation);

    private static bool HasTarget(UnitInstruction ui) => ui.Op.Kind is FastKind.Jcc or FastKind.Jmp or FastKind.CallRel;

    private void DeclareLocals()
    {
        for (int r = 0; r < 16; r++)
        {
            if (_regUsed[r])
            {
                _reg[r] = _il.DeclareLocal(typeof(ulong));
            }
        }

        _carryToken = new LocalBuilder?[_ins.Count];
        for (int k = 0; k < _ins.Count; k++)
        {
            if (_carryHandoff[k])
            {
                _carryToken[k] = _il.DeclareLocal(typeof(int));
            }
        }

        _icount = _il.DeclareLocal(typeof(long));
        _exitRip = _il.DeclareLocal(typeof(ulong));
        _exitReason = _il.DeclareLocal(typeof(int));
        _t0 = _il.DeclareLocal(typeof(ulong));
        _t1 = _il.DeclareLocal(typeof(ulong));
        _t2 = _il.DeclareLocal(typeof(ulong));
        _t3 = _il.DeclareLocal(typeof(ulong));
        _la = _il.DeclareLocal(typeof(ulong));
        _val = _il.DeclareLocal(typeof(ulong));
        _w = _il.DeclareLocal(typeof(ulong));
        _c0 = _il.DeclareLocal(typeof(int));
        _curOff = _il.DeclareLocal(typeof(ulong));
        // The fault and store exits never run together: one local serves both.
        _curNext = _curOff;
        _curAdj = _il.DeclareLocal(typeof(long));
        _status = _il.DeclareLocal(typeof(int));
        _rv = _il.DeclareLocal(typeof(ulong));
        _curPacked = _il.DeclareLocal(typeof(long));
        _ra = _il.DeclareLocal(typeof(ulong));
        _wa = _il.DeclareLocal(typeof(ulong));
        _wv = _il.DeclareLocal(typeof(ulong));
        _rv2 = _il.DeclareLocal(typeof(ulong));
        _eref = _il.DeclareLocal(typeof(nint));
        _tlbBase = _il.DeclareLocal(typeof(nint));
    }

    /// <summary>Pushes the address of Cpu.Gpr[<paramref name="r"/>] (inline in the Cpu object: a fixed offset).</summary>
    private void GprFieldAddress(int r)
    {
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldflda, Cpu.FieldGpr);
        if (r != 0)
        {
            LdI4(r * sizeof(ulong));
            Op(OpCodes.Add);
        }
    }

    /// <summary>Pushes Cpu.Gpr[<paramref name="r"/>].</summary>
    private void LdGprField(int r)
    {
        GprFieldAddress(r);
        _il.Emit(OpCodes.Ldind_I8);
    }

    private void EmitPrologue()
    {
        for (int r = 15; r >= 0; r--)
        {
            if (_regUsed[r])
            {
                LdGprField(r);
                _il.Emit(OpCodes.Stloc, _reg[r]!);
            }
        }

        _il.Emit(OpCodes.Ldc_I8, 0L);
        _il.Emit(OpCodes.Stloc, _icount);

        // Every way in finds the flags in the Cpu's fields (token 0, see CarryJoin).
        foreach (var token in _carryToken)
        {
            if (token is not null)
            {
                LdI4(0);
                St(token);
            }
        }

        // The current privilege class's TLB slots (a pinned array), for the inlined fast paths (EmitTlbSlot).
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, Cpu.FieldMmu);
        _il.Emit(OpCodes.Ldfld, Memory.Mmu.FieldCurrentTlb);
        _il.Emit(OpCodes.Stloc, _tlbBase);
    }

    /// <summary>Most side entries a unit offers (each is a target of the switch at its start).</summary>
    internal const int MaxSideEntries = 32;

    // Instruction indices of the side entries (TranslatedUnit.SideEntries), in offset order.
    private readonly List<int> _sideEntries = [];

    /// <summary>Goes to the instruction the dispatcher entered the unit at: its entry, or one of its joins in the entry
    /// page (TranslatedUnit.SideEntries). A join already starts with nothing known about flags or the stack segment
    /// and with no deferred rotate pending, whatever path reached it, so entering there needs nothing else.</summary>
    private void EmitEntrySwitch()
    {
        int primary = _index[_entry];
        _sideEntries.AddRange(SideEntryIndices(_ins, _joins, _entry));

        if (_sideEntries.Count > 0)
        {
            var targets = new Label[_sideEntries.Count + 1];
            targets[0] = _labels[primary];
            for (int i = 0; i < _sideEntries.Count; i++)
            {
                targets[i + 1] = _labels[_sideEntries[i]];
            }

            _il.Emit(OpCodes.Ldarg_S, (byte)4);
            _il.Emit(OpCodes.Switch, targets);
        }

        _il.Emit(OpCodes.Br, _labels[primary]);
    }

    private void EmitEpilogue()
    {
        _il.MarkLabel(_epilogue);
        for (int r = 15; r >= 0; r--)
        {
            if (_regWritten[r])
            {
                GprFieldAddress(r);
                _il.Emit(OpCodes.Ldloc, _reg[r]!);
                _il.Emit(OpCodes.Stind_I8);
            }
        }

        StoreFlags();
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldloc, _exitRip);
        _il.Emit(OpCodes.Stfld, Cpu.FieldRip);
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldloc, _exitRip);
        _il.Emit(OpCodes.Stfld, Cpu.FieldNextRip);
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, Cpu.FieldInstructions);
        _il.Emit(OpCodes.Ldloc, _icount);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Stfld, Cpu.FieldInstructions);
        _il.Emit(OpCodes.Ldloc, _exitReason);
        _il.Emit(OpCodes.Ret);
    }

    private void EmitStub(ExitStub s)
    {
        _il.MarkLabel(s.Label);
        if (s.CommitFlags)
        {
            EmitCommitDeferred();
        }

        if (s.CountAdjust != 0)
        {
            _il.Emit(OpCodes.Ldloc, _icount);
            _il.Emit(OpCodes.Ldc_I8, (long)s.CountAdjust);
            _il.Emit(OpCodes.Sub);
            _il.Emit(OpCodes.Stloc, _icount);
        }

        if (!s.RipInLocal)
        {
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldc_I8, s.RipOffset);
            _il.Emit(OpCodes.Add);
            _il.Emit(OpCodes.Stloc, _exitRip);
        }

        // Exits to another unit carry a link number above the reason (TranslatedUnit.Links): the dispatcher remembers
        // where each one went.
        int value = (int)s.Reason;
        if (s.Reason is TranslationExit.End or TranslationExit.Branch or TranslationExit.Indirect)
        {
            value |= ++_linkCount << TranslationExits.LinkShift;
        }

        LdI4(value);
        _il.Emit(OpCodes.Stloc, _exitReason);
        _il.Emit(OpCodes.Br, _epilogue);
    }

    // ---- exits -----------------------------------------------------------------------------------------------------

    /// <summary>Instructions of the current block not completed when exiting before the current instruction.</summary>
    private int AdjustBefore => _blockLen[_k] - _blockPos[_k];

    /// <summary>Instructions of the current block not completed when exiting after the current instruction.</summary>
    private int AdjustAfter => _blockLen[_k] - _blockPos[_k] - 1;

    private Label Stub(TranslationExit reason, long ripOffset, bool ripInLocal, int adjust)
    {
        var l = _il.DefineLabel();
        _stubs.Add(new ExitStub(l, reason, ripOffset, ripInLocal, adjust, _deferActive));
        return l;
    }

    // EnsureCurrent's packed constant: the instruction's offset from the entry page (32 bits, signed: a trace's other
    // pages may lie below it), count adjustment (9 bits: a block has at most 256 instructions), then the signed
    // distance to where execution continues (23 bits; a CALL's rel32 target may lie farther: then PackFarNext, and
    // the offset itself in _farNext).
    private const int PackAdjShift = 32;
    private const int PackNextShift = 41;
    private const long PackAdjMask = 0x1FF;
    private const long PackFarNext = -(1L << 22);

    /// <summary>
    /// Records, once per instruction, what the shared fault and store exits need: the instruction's offset, where
    /// execution continues after it (<paramref name="nextOffset"/>) and its count adjustment, packed into one constant
    /// (one local store per instruction instead of three; unpacked by EmitUnpackExits). One shared exit per kind
    /// instead of a stub per access keeps the method small, which is what the JIT's time depends on.
    /// </summary>
    private void EnsureCurrent(long nextOffset)
    {
        if (_currentSet == _k)
        {
            return;
        }

        if (_slowPathPacked == _k && nextOffset != Cur.NextOffset)
        {
            // An access's slow path already packed the ordinary next offset for this instruction's exits.
            throw new InvalidOperationException("translator: exit data with two next offsets in one instruction");
        }

        _currentSet = _k;
        EmitPacked(nextOffset);
    }

    /// <summary>
    /// On the slow path of an access whose inline TLB path cannot fault or exit (<see cref="FaultStubForSlowPath"/>):
    /// the instruction's exit data, unless the main path set it ahead of the access. Saves the constant's store on
    /// the main path of every such load and plain store (two host instructions each).
    /// </summary>
    private void EmitCurrentOnSlowPath()
    {
        if (_currentSet == _k)
        {
            return;
        }

        _slowPathPacked = _k;
        EmitPacked(Cur.NextOffset);
    }

    // The instruction whose exit data an access's slow path packed (EmitCurrentOnSlowPath), for EnsureCurrent's check.
    private int _slowPathPacked = -1;

    private void EmitPacked(long nextOffset)
    {
        if (IsFarNext(nextOffset))
        {
            _farNext ??= _il.DeclareLocal(typeof(long));
            _il.Emit(OpCodes.Ldc_I8, nextOffset);
            St(_farNext);
        }

        _il.Emit(OpCodes.Ldc_I8, Packed(nextOffset));
        St(_curPacked);
    }

    /// <summary>The current instruction's exit data (see EnsureCurrent) for <paramref name="nextOffset"/>.</summary>
    private long Packed(long nextOffset)
    {
        long adj = AdjustAfter;
        if ((ulong)adj > PackAdjMask)
        {
            throw new InvalidOperationException($"translator: count adjustment {adj} does not fit the exit data");
        }

        long distance = IsFarNext(nextOffset) ? PackFarNext : nextOffset - Cur.Offset;
        return (long)((uint)Cur.Offset | ((ulong)adj << PackAdjShift) | ((ulong)distance << PackNextShift));
    }

    /// <summary>Whether <paramref name="nextOffset"/> is too far from the current instruction for the packed exit data
    /// (it then goes in _farNext).</summary>
    private bool IsFarNext(long nextOffset) => (nextOffset - Cur.Offset) is <= PackFarNext or >= -PackFarNext;

    // Out-of-line blocks of accesses whose TLB test missed (MissBranch): the exit data, then the miss exit.
    private readonly List<(Label Block, long Packed, Label Exit)> _missBlocks = [];

    /// <summary>
    /// Where an access's failed TLB test branches: straight to the miss exit when the main path set the instruction's
    /// exit data ahead of the access, else to a block at the end of the method that sets it first. Either way the
    /// access is one compare and branch on the hot path with nothing to rejoin (the interpreter takes the instruction over).
    /// </summary>
    private Label MissBranch(Label exit)
    {
        if (_currentSet == _k)
        {
            return exit;
        }

        _slowPathPacked = _k;
        var block = _il.DefineLabel();
        _missBlocks.Add((block, Packed(Cur.NextOffset), exit));
        return block;
    }

    private void EmitMissBlocks()
    {
        foreach (var (block, packed, exit) in _missBlocks)
        {
            _il.MarkLabel(block);
            _il.Emit(OpCodes.Ldc_I8, packed);
            St(_curPacked);
            _il.Emit(OpCodes.Br, exit);
        }
    }

    /// <summary>Unpacks EnsureCurrent's constant into the locals the shared exits read, in front of each exit used.</summary>
    private void EmitUnpackExits()
    {
        if (_storeOrFaultUsed)
        {
            _il.MarkLabel(_storeOrFault);
            Ld(_status);
            LdI4(1);
            _il.Emit(OpCodes.Beq, _faultUnpack);
            _il.Emit(OpCodes.Br, _storeUnpack);
        }

        if (_faultExitUsed)
        {
            _il.MarkLabel(_faultUnpack);
            EmitUnpackAdjust();
            EmitUnpackOffset();
            St(_curOff);
            _il.Emit(OpCodes.Br, _faultExit);
        }

        if (_missExitUsed)
        {
            // As the fault exit, but the instruction has not run: one more to take off the count.
            _il.MarkLabel(_missUnpack);
            EmitUnpackAdjust();
            Ld(_curAdj);
            LdI8(1);
            Op(OpCodes.Add);
            St(_curAdj);
            EmitUnpackOffset();
            St(_curOff);
            _il.Emit(OpCodes.Br, _missExit);
        }

        if (_storeExitUsed)
        {
            _il.MarkLabel(_storeUnpack);
            EmitUnpackAdjust();
            Ld(_curPacked);
            LdI4(PackNextShift);
            Op(OpCodes.Shr);
            if (_farNext is not null)
            {
                var near = _il.DefineLabel();
                Op(OpCodes.Dup);
                _il.Emit(OpCodes.Ldc_I8, PackFarNext);
                _il.Emit(OpCodes.Bne_Un, near);
                Op(OpCodes.Pop);
                Ld(_farNext);
                St(_curNext);
                _il.Emit(OpCodes.Br, _storeExit);
                _il.MarkLabel(near);
            }

            EmitUnpackOffset();
            Op(OpCodes.Add);
            St(_curNext);
            _il.Emit(OpCodes.Br, _storeExit);
        }
    }

    /// <summary>Pushes the instruction offset packed by EnsureCurrent (sign-extended).</summary>
    private void EmitUnpackOffset()
    {
        Ld(_curPacked);
        Op(OpCodes.Conv_I4);
        Op(OpCodes.Conv_I8);
    }

    private void EmitUnpackAdjust()
    {
        Ld(_curPacked);
        LdI4(PackAdjShift);
        Op(OpCodes.Shr);
        _il.Emit(OpCodes.Ldc_I8, PackAdjMask);
        Op(OpCodes.And);
        St(_curAdj);
    }

    /// <summary>A memory access of the current instruction faulted: the instruction counts as executed (as in Step), RIP
    /// stays at it. Call it before pushing the access's arguments (it may emit a local store).</summary>
    private Label FaultStub()
    {
        EnsureCurrent(Cur.NextOffset);
        return FaultStubForSlowPath();
    }

    /// <summary>As <see cref="FaultStub"/>, for an access that can fault only on its slow path, which must call
    /// <see cref="EmitCurrentOnSlowPath"/> before its accessor call.</summary>
    private Label FaultStubForSlowPath()
    {
        _faultExitUsed = true;
        var exit = _faultFixup[_k] ? _deferredFix!.Value : _faultUnpack;
        return _deferActive ? WriterFix(exit) : exit;
    }

    /// <summary>The fault exits of loads after a deferred rotate: commit its CF/OF onto the flags from before it
    /// (what the Cpu's fields still hold), then the shared fault exit.</summary>
    private void EmitDeferredRotateFixes()
    {
        foreach (var fix in _deferredFixes)
        {
            // Only while a deferred rotate's region is live on this path (a join may be reached without one).
            _il.MarkLabel(fix);
            Ld(_deferredPending!);
            _il.Emit(OpCodes.Brfalse, _faultUnpack);
            _il.Emit(OpCodes.Ldarg_0);
            Ld(_deferredCf!);
            Ld(_deferredOf!);
            Call(Cpu.MethodPatchCfOf);
            _il.Emit(OpCodes.Br, _faultUnpack);
        }
    }

    private void EmitSharedExits()
    {
        if (_faultExitUsed)
        {
            EmitSharedExit(_faultExit, _curOff, TranslationExit.Fault);
        }

        if (_storeExitUsed)
        {
            EmitSharedExit(_storeExit, _curNext, TranslationExit.Store);
        }

        if (_missExitUsed)
        {
            EmitSharedExit(_missExit, _curOff, TranslationExit.Fallback);
        }
    }

    private void EmitSharedExit(Label label, LocalBuilder rip, TranslationExit reason)
    {
        _il.MarkLabel(label);
        Ld(_icount);
        Ld(_curAdj);
        Op(OpCodes.Sub);
        St(_icount);
        _il.Emit(OpCodes.Ldarg_1);
        Ld(rip);
        Op(OpCodes.Add);
        St(_exitRip);
        LdI4((int)reason);
        St(_exitReason);
        _il.Emit(OpCodes.Br, _epilogue);
    }

    /// <summary>
    /// In front of the page-crossing instruction: the next linear page must still map to the physical page its bytes
    /// came from, unchanged since (Cpu.TranslatedPageValid); otherwise the interpreter fetches the instruction
    /// (and raises the fetch fault, if any, with CR2 in the next page).
    /// </summary>
    private void EmitCrossingGuard() => EmitPageCheck(PageSize, _crossing!.PhysPage, _crossing.Generation, FallbackStub());

    /// <summary>Branches to <paramref name="fail"/> unless the linear page <paramref name="delta"/> bytes from the unit's
    /// page still maps, for fetch now, to <paramref name="physPage"/> at <paramref name="generation"/>
    /// (Cpu.TranslatedPageValid).</summary>
    private void EmitPageCheck(long delta, ulong physPage, int generation, Label fail)
    {
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldarg_1);
        LdI8((ulong)delta);
        Op(OpCodes.Add);
        LdI8(physPage);
        LdI4(generation);
        Call(Cpu.MethodPageValid);
        _il.Emit(OpCodes.Brfalse, fail);
    }

    /// <summary>Leaves the current instruction to the interpreter (it re-executes it from scratch).</summary>
    private Label FallbackStub() => Stub(TranslationExit.Fallback, Cur.Offset, false, AdjustBefore);

    /// <summary>Continues at page offset <paramref name="target"/> after the current instruction: an IL branch when the
    /// target is in the unit (checking budget and attention on backward branches), else an exit.</summary>
    private void EmitGoto(long target, TranslationExit reason)
    {
        if (TryIndex(target, out int j))
        {
            if (PageDelta(target) != PageDelta(Cur.Offset))
            {
                EmitPageGuard(target, reason);
            }

            if (j <= _k)
            {
                var budget = Stub(TranslationExit.Budget, target, false, AdjustAfter);
                _il.Emit(OpCodes.Ldloc, _icount);
                _il.Emit(OpCodes.Ldarg_2);
                _il.Emit(OpCodes.Bge, budget);
                _il.Emit(OpCodes.Ldarg_0);
                _il.Emit(OpCodes.Volatile);
                _il.Emit(OpCodes.Ldfld, Cpu.FieldAttention);
                _il.Emit(OpCodes.Brtrue, budget);
            }

            if (_deferActive && FlagsLiveAt(j) && !EmitCarryHandoff(j))
            {
                // This edge only: the code after it (another path) keeps the deferred state.
                EmitCommitDeferred();
            }

            _il.Emit(OpCodes.Br, _labels[j]);
            return;
        }

        _il.Emit(OpCodes.Br, Stub(reason, target, false, AdjustAfter));
    }

    private void EmitFallThrough()
    {
        int next = Cur.NextOffset;
        if (Contiguous(_k))
        {
            return;
        }

        EmitGoto(next, TranslationExit.End);
    }

    /// <summary>After a store (and the instruction's commit): leave if the store rewrote this unit's code page or raised
    /// attention (the write wrapper's status, see Cpu.TranslatedWriteMethod).</summary>
    private void EmitStoreCheck(long nextRipOffset, bool ripInLocal)
    {
        _ = ripInLocal;
        if (_deferActive)
        {
            // The shared store exit commits no deferred flag state (a region holds only stores that need no check:
            // see ExitsOnlyBefore).
            throw new InvalidOperationException("translator: a store check inside a deferred flag writer's region");
        }

        EnsureCurrent(nextRipOffset);
        _storeExitUsed = true;
        Ld(_status);
        _il.Emit(OpCodes.Brtrue, _storeUnpack);
    }

    // ---- small IL helpers ------------------------------------------------------------------------------------------

    private void LdI4(int v) => _il.Emit(OpCodes.Ldc_I4, v);

    private void LdI8(ulong v) => _il.Emit(OpCodes.Ldc_I8, (long)v);

    private void Ld(LocalBuilder l) => _il.Emit(OpCodes.Ldloc, l);

    private void St(LocalBuilder l)
    {
        LocalWritten(l);
        _il.Emit(OpCodes.Stloc, l);
    }

    private void Op(OpCode op) => _il.Emit(op);

    private void Call(MethodInfo m) => _il.Emit(OpCodes.Call, m);

    /// <summary>Zero-extends the low <paramref name="size"/> bytes of the ulong on the stack.</summary>
    private void Mask(int size)
    {
        switch (size)
        {
            case 4:
                Op(OpCodes.Conv_U4);
                Op(OpCodes.Conv_U8);
                break;
            case 2:
                Op(OpCodes.Conv_U2);
                Op(OpCodes.Conv_U8);
                break;
            case 1:
                Op(OpCodes.Conv_U1);
                Op(OpCodes.Conv_U8);
                break;
        }
    }

    /// <summary>Sign-extends the low <paramref name="size"/> bytes of the value on the stack to 64 bits.</summary>
    private void SignExtend(int size)
    {
        switch (size)
        {
            case 4:
                Op(OpCodes.Conv_I4);
                Op(OpCodes.Conv_I8);
                break;
            case 2:
                Op(OpCodes.Conv_I2);
                Op(OpCodes.Conv_I8);
                break;
            case 1:
                Op(OpCodes.Conv_I1);
                Op(OpCodes.Conv_I8);
                break;
        }
    }

    private void LdReg(int r) => Ld(_reg[r]!);

    private void LdReg(int r, int size)
    {
        LdReg(r);
        Mask(size);
    }

    /// <summary>Writes the ulong on the stack to a register with x86-64 partial-write rules (32-bit writes zero-extend,
    /// 8/16-bit writes merge), like Cpu.WrGpr.</summary>
    private void StReg(int r, int size)
    {
        var reg = _reg[r]!;
        switch (size)
        {
            case 8:
                St(reg);
                break;
            case 4:
                Mask(4);
                St(reg);
                break;
            default:
                // (value & mask) | (reg & ~mask) on the IL stack: one statement, no temporary.
                Mask(size);
                Ld(reg);
                LdI8(~Cpu.SizeMask(size));
                Op(OpCodes.And);
                Op(OpCodes.Or);
                St(reg);
                break;
        }
    }

    /// <summary>Whether the compiler can translate this instruction: a FastOp form, or one of <see cref="UnitExtra"/>
    /// (classified here, operands stored in <paramref name="op"/>).</summary>
    public static bool Supports(in Instruction ins, ref FastOp op, out UnitExtra extra)
    {
        extra = UnitExtra.None;
        if (op.Kind != FastKind.Generic)
        {
            return true;
        }

        if (ins.Mnemonic is Mnemonic.Prefetch or Mnemonic.Prefetchnta or Mnemonic.Prefetcht0 or Mnemonic.Prefetcht1 or
            Mnemonic.Prefetcht2 or Mnemonic.Prefetchw or Mnemonic.Lfence or Mnemonic.Sfence)
        {
            // No architectural effect and never a fault (the interpreter runs them as no-ops too): a NOP in the unit.
            op.Kind = FastKind.Nop;
            op.Base = FastOp.NoReg;
            op.Index = FastOp.NoReg;
            return true;
        }

        extra = ClassifyExtra(ins, ref op);
        return extra != UnitExtra.None;
    }
}
