// Dead arithmetic flags at translation time. A flag-writing instruction whose flags the next instructions of its block
// overwrite before anything can read them (a condition, a carry-in, a helper call, an exit of any kind: a fault, a
// store check, a branch) commits nothing: no lazy-flag stores, no carry or eager-flag computation, no PatchCfOf call
// for a rotate. Only instructions without any exit can be skipped over (register-only forms), so every exit still sees
// exactly the interpreter's flags. Round 3 (JIT cost): a rotate's flags alone were a call and a dozen IL statements.
using Ringvisor.Emulator.Decoding;
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator.Translation;

internal sealed partial class UnitCompiler
{
    private bool[] _flagsDead = [];

    // Instructions reached by some edge other than the fall-through from the instruction before (the entry, branch
    // targets, non-contiguous fall-throughs). A block leader that is not a join (the instruction after a Jcc, reached
    // only when the Jcc is not taken) keeps what is known about the flags: one path leads there.
    private bool[] _joins = [];

    private void ScanJoins() => _joins = Joins(_ins, _index, _entry);

    /// <summary>The region's joins (instructions <paramref name="ins"/>, sorted by offset, indexed by offset in
    /// <paramref name="index"/>): its entry, branch targets inside it, and instructions not reached by falling
    /// through from the one before. Also what a vCPU predicts a queued region's side entries from
    /// (<see cref="JoinOffsets"/>).</summary>
    private static bool[] Joins(List<UnitInstruction> ins, Dictionary<int, int> index, int entry)
    {
        int n = ins.Count;
        var joins = new bool[n];
        joins[index[entry]] = true;
        for (int k = 0; k < n; k++)
        {
            var ui = ins[k];
            if (HasTarget(ui) && ui.BranchTarget is >= int.MinValue and <= int.MaxValue && index.TryGetValue((int)ui.BranchTarget, out int t))
            {
                joins[t] = true;
            }

            bool falls = FallsThrough(ui);
            bool contiguous = falls && Contiguous(ins, k);
            if (falls && !contiguous && index.TryGetValue(ui.NextOffset, out int j))
            {
                joins[j] = true;
            }

            if (k + 1 < n && !contiguous)
            {
                // Not reached by falling through (after JMP/RET/CALL...): only by edges marked above, if at all.
                joins[k + 1] = true;
            }
        }

        return joins;
    }

    /// <summary>The page offsets of a region's joins other than its entry, in the entry page, the first
    /// <see cref="MaxSideEntries"/>: the side entries its unit will offer (EmitEntrySwitch takes them in the same
    /// order), for a region chosen but not compiled yet.</summary>
    internal static IEnumerable<int> JoinOffsets(List<UnitInstruction> ins, int entry)
    {
        var index = new Dictionary<int, int>(ins.Count);
        for (int i = 0; i < ins.Count; i++)
        {
            index[ins[i].Offset] = i;
        }

        return SideEntryIndices(ins, Joins(ins, index, entry), entry).Select(k => ins[k].Offset);
    }

    /// <summary>Indices of the joins a unit offers as side entries: in the entry page, not the entry, the first
    /// <see cref="MaxSideEntries"/> in offset order.</summary>
    private static IEnumerable<int> SideEntryIndices(List<UnitInstruction> ins, bool[] joins, int entry)
    {
        int offered = 0;
        for (int k = 0; k < ins.Count && offered < MaxSideEntries; k++)
        {
            if (joins[k] && ins[k].Offset != entry && PageDelta(ins[k].Offset) == 0)
            {
                offered++;
                yield return k;
            }
        }
    }

    // Rotates whose flags only a fault of the loads after them can see (FaultOnly below): the rotate keeps CF/OF in
    // locals and those loads' fault exits commit them (EmitDeferredRotateFlags) instead of a PatchCfOf call on the
    // main path. md5's rounds are rotates followed by loads of the message words and table constants.
    private bool[] _rotateDeferred = [];
    private bool[] _faultFixup = [];

    /// <summary>What a point of a block needs of the flags: nothing, only the fault exits of the loads ahead (each
    /// exits before it changes anything), or everything.</summary>
    private enum FlagNeed : byte
    {
        Dead,
        FaultOnly,
        Live,
    }

    /// <summary>Whether the current instruction's flags are dead (overwritten before any reader or exit).</summary>
    private bool FlagsDead => _flagsDead[_k];

    /// <summary>Whether the current (rotate) instruction's flags are needed only if a load after it faults.</summary>
    private bool RotateFlagsDeferred => _rotateDeferred[_k];

    // Full flag writers (ALU ops into registers, TEST, shifts by immediates) whose flags, up to the next full writer
    // or the end of their block, only these can see: the fault exits of loads, conditions evaluated from what the
    // emitter knows (Jcc, SETcc, CMOVcc: ConditionInline), exits (a Jcc's target outside the unit, the budget check of
    // a backward branch), and the paths out of the block where the flags are live. The writer leaves its lazy state in
    // locals instead of the Cpu's fields; each of those exits and paths commits it (_deferActive). So
    // `xor eax, eax; mov rdx, [rbx]; test dl, dl` costs no field stores on the main path, nor does a loop's
    // `add r8d, 1; jne head` (the stores move to the loop's exit and its budget exit), nor `cmp rcx, r13; cmovae`.
    private bool[] _writerDeferred = [];

    /// <summary>Whether the current instruction keeps its flag commit in locals (see _writerDeferred).</summary>
    private bool WriterFlagsDeferred => _writerDeferred[_k];

    /// <summary>Backward pass over each block: flags are live at block ends and before any instruction that may exit
    /// or reads them; a full writer without exits kills them. A load that may only fault (and writes all flags or
    /// none) needs the flags before it only on its fault exit.</summary>
    private void ScanFlagLiveness()
    {
        int n = _ins.Count;
        _flagsDead = new bool[n];
        _rotateDeferred = new bool[n];
        _faultFixup = new bool[n];
        var needAfter = new FlagNeed[n];
        var before = FlagNeed.Live;
        for (int k = n - 1; k >= 0; k--)
        {
            // Across a plain fall-through into the next block the need is that block's (it is the same path; the
            // block being a join for other paths changes nothing about what it needs).
            var after = k + 1 == n || (_leader[k + 1] && !FallsInto(k)) ? FlagNeed.Live : before;
            var ui = _ins[k];
            _flagsDead[k] = after == FlagNeed.Dead;
            needAfter[k] = after;
            if (CrossesPage(ui))
            {
                // The page-crossing instruction's guard exits to the interpreter before it: every flag is committed.
                before = FlagNeed.Live;
            }
            else if (ui.Extra == UnitExtra.RotateRI && MaskedCount(ui.Op) != 0)
            {
                // CF/OF written, the rest kept: the input matters where the output does (a deferred rotate's fix-up
                // commits its CF/OF on top of the state before it, so that state is needed at the same exits).
                _rotateDeferred[k] = after == FlagNeed.FaultOnly;
                before = after;
            }
            else if (FaultOnlyLoad(ui, out bool writesAll))
            {
                before = writesAll || after == FlagNeed.Dead ? FlagNeed.FaultOnly : after;
            }
            else if (!RegisterOnly(ui) || ReadsFlags(ui))
            {
                before = FlagNeed.Live;
            }
            else if (WritesAllFlags(ui))
            {
                before = FlagNeed.Dead;
            }
            else if (after == FlagNeed.FaultOnly && !KeepsFlags(ui))
            {
                // A partial writer (INC/DEC keep CF, a shift by CL may be by 0) commits as if its flags were live.
                before = FlagNeed.Live;
            }
            else
            {
                // No flags touched, or only some of them: the input matters exactly when the output does.
                before = after;
            }
        }

        // Forward: the loads after each deferred rotate, up to the instruction that overwrites the flags, take the
        // fix-up on their fault exit; a region may go on through a fall-through into the next block. That block may
        // be a join, reached on other paths with no rotate deferred: the fix-up applies only while the run-time
        // pending flag is set (by the rotate; cleared after the instruction that ends its region).
        bool active = false;
        _pendingReset = new bool[n];
        for (int k = 0; k < n; k++)
        {
            var ui = _ins[k];
            if (_leader[k] && !(k > 0 && FallsInto(k - 1)) && active)
            {
                // Not reached by this block's fall-through (no such region by the liveness above; kept safe anyway).
                active = false;
                _pendingReset[k - 1] = true;
            }

            if (_rotateDeferred[k])
            {
                active = true;
                continue;
            }

            if (!active)
            {
                continue;
            }

            if (FaultOnlyLoad(ui, out bool writesAll))
            {
                _faultFixup[k] = true;
                active = !writesAll;
            }
            else if (!(RegisterOnly(ui) && KeepsFlags(ui)))
            {
                active = false;
            }

            _pendingReset[k] = !active;
        }

        ScanDeferredWriters(needAfter);
    }

    /// <summary>
    /// Forward, per full writer whose flags something may read (see _writerDeferred): it is deferred when everything up
    /// to the next full writer, in its block, is allowed in a region (AllowedWhileDeferred, conditions it can evaluate
    /// inline, Jcc targets in the unit where the flags are dead) and the paths out of the block need no commit on the
    /// way a loop goes on (a dead successor, or the exit of a backward branch's loop).
    /// </summary>
    private void ScanDeferredWriters(FlagNeed[] needAfter)
    {
        int n = _ins.Count;
        _writerDeferred = new bool[n];
        _carryHandoff = new bool[n];
        for (int k = 0; k < n; k++)
        {
            if (needAfter[k] == FlagNeed.Dead || !DeferrableWriter(_ins[k]))
            {
                continue;
            }

            var op = WriterFlagOp(_ins[k]);
            bool ok = false;
            bool rotated = false;
            int handoff = -1;
            for (int j = k + 1; ; j++)
            {
                if (j == n)
                {
                    // Off the unit's end: its exit stub commits.
                    ok = true;
                    break;
                }

                if (_leader[j])
                {
                    var prev = _ins[j - 1];
                    bool live = FallsThrough(prev) && Contiguous(j - 1) && FlagsLiveAt(j);
                    ok = !live || (prev.Op.Kind == FastKind.Jcc && prev.Extra == UnitExtra.None &&
                        TryIndex(prev.BranchTarget, out int back) && back < j);
                    break;
                }

                var uj = _ins[j];
                if (CrossesPage(uj))
                {
                    break;
                }

                if (FaultOnlyLoad(uj, out bool writesAll))
                {
                    if (writesAll)
                    {
                        ok = true;
                        break;
                    }

                    continue;
                }

                if (ExitsOnlyBefore(uj))
                {
                    continue;
                }

                if (RegisterOnly(uj) && !ReadsFlags(uj) && WritesAllFlags(uj) && AllowedWhileDeferred(j))
                {
                    ok = true;
                    break;
                }

                if (KeepsFlags(uj) || (uj.Extra == UnitExtra.RotateRI && _rotateDeferred[j]))
                {
                    rotated |= uj.Extra == UnitExtra.RotateRI;
                    continue;
                }

                if (CarryChain(uj) && op is FlagOp.Add or FlagOp.Sub or FlagOp.Logic)
                {
                    // ADC/SBB/INC/DEC read CF (EmitCarry, from the locals) and commit their own state.
                    ok = true;
                    break;
                }

                if (uj.Extra == UnitExtra.None && uj.Op.Kind is FastKind.CmovRR or FastKind.SetccR or FastKind.Jcc &&
                    ConditionInline(op, uj.Op.Aux))
                {
                    if (uj.Op.Kind == FastKind.Jcc && TryIndex(uj.BranchTarget, out int t) &&
                        (PageDelta(uj.BranchTarget) != PageDelta(uj.Offset) || FlagsLiveAt(t)))
                    {
                        if (rotated || !CarryHandoffOp(op) || !CarryJoin(t) ||
                            PageDelta(uj.BranchTarget) != PageDelta(uj.Offset))
                        {
                            break;
                        }

                        // The target only needs CF (an INC/DEC at a join): the edge hands it over (EmitCarryHandoff).
                        handoff = t;
                    }

                    continue;
                }

                break;
            }

            _writerDeferred[k] = ok;
            if (ok && handoff >= 0)
            {
                _carryHandoff[handoff] = true;
            }
        }
    }

    // Joins whose INC/DEC may receive CF from an edge instead of the Cpu's fields (_carryToken, EmitCarryHandoff).
    private bool[] _carryHandoff = [];

    /// <summary>
    /// An INC or DEC of a register at a join (the head of `inc rax; cmp byte [rax], 0; jne head`): the only thing it
    /// needs of the flags before it is CF, which it keeps, and its own state replaces all of them. An edge into it
    /// from a deferred writer's region (whose operation makes CF an inline compare) need not commit the writer: it
    /// hands CF over in a local (the join's token), and the INC/DEC takes its carry-in from there, or from the fields
    /// when the token says they hold the state (every other way in: the unit's entries, committing edges). The loop's
    /// compare then stays in locals on every iteration, and the INC needs no call for its carry-in.
    /// </summary>
    private bool CarryJoin(int j)
    {
        var ui = _ins[j];
        return _joins[j] && ui.Extra == UnitExtra.None && ui.Op.Kind is FastKind.IncR or FastKind.DecR &&
            !CrossesPage(ui) && PageDelta(ui.Offset) == 0;
    }

    /// <summary>Writers whose CF an edge can compute from their deferred locals (EmitCarryHandoff).</summary>
    private static bool CarryHandoffOp(FlagOp op) => op is FlagOp.Sub or FlagOp.Add or FlagOp.Logic or FlagOp.Inc or FlagOp.Dec;

    /// <summary>Whether instruction <paramref name="k"/> may run while a deferred writer's state is not committed: it
    /// leaves the Cpu's lazy-flag fields alone and its exits take the commit (register moves, loads, full writers that
    /// commit their own state, conditions, a deferred rotate). Before anything else the state is committed.</summary>
    private bool AllowedWhileDeferred(int k)
    {
        var ui = _ins[k];
        if (CrossesPage(ui))
        {
            return false;
        }

        if (KeepsFlags(ui) || FaultOnlyLoad(ui, out _) || DeferrableWriter(ui) || ExitsOnlyBefore(ui))
        {
            return true;
        }

        if (ui.Extra == UnitExtra.RotateRI)
        {
            return _rotateDeferred[k];
        }

        return CarryChain(ui) || (ui.Extra == UnitExtra.None && ui.Op.Kind is FastKind.CmovRR or FastKind.SetccR or
            FastKind.Jcc or FastKind.ImulRR or FastKind.ImulRRI);
    }

    /// <summary>ADC or SBB of a register with a register or an immediate, INC or DEC of a register: each reads CF
    /// and leaves a complete lazy state of its own.</summary>
    private static bool CarryChain(UnitInstruction ui) =>
        ui.Extra == UnitExtra.None &&
        ((ui.Op.Kind is FastKind.AluRR or FastKind.AluRI && (AluOp)ui.Op.Aux is AluOp.Adc or AluOp.Sbb) ||
         ui.Op.Kind is FastKind.IncR or FastKind.DecR);

    /// <summary>Whether the arithmetic flags may be read at instruction <paramref name="j"/> before a full writer
    /// overwrites them: by a reader, an exit of any kind, or a place this cannot follow (conservatively live).</summary>
    private bool FlagsLiveAt(int j)
    {
        for (int steps = 0; steps < 64 && j < _ins.Count; steps++)
        {
            var ui = _ins[j];
            if (CrossesPage(ui) || !RegisterOnly(ui) || ReadsFlags(ui))
            {
                return true;
            }

            if (WritesAllFlags(ui))
            {
                return false;
            }

            if (!KeepsFlags(ui) || !Contiguous(j))
            {
                return true;
            }

            j++;
        }

        return true;
    }

    /// <summary>The lazy operation a deferrable writer (DeferrableWriter) leaves: what its readers' conditions are
    /// evaluated against.</summary>
    private static FlagOp WriterFlagOp(UnitInstruction ui) => ui.Op.Kind switch
    {
        FastKind.TestRR or FastKind.TestRI or FastKind.TestMR or FastKind.TestMI => FlagOp.Logic,
        FastKind.IncR => FlagOp.Inc,
        FastKind.DecR => FlagOp.Dec,
        FastKind.ShiftRI => FlagOp.Shl, // any shift: ZF and SF only (ConditionInline)
        _ => (AluOp)ui.Op.Aux switch
        {
            AluOp.Add => FlagOp.Add,
            AluOp.Sub or AluOp.Cmp => FlagOp.Sub,
            AluOp.And or AluOp.Or or AluOp.Xor => FlagOp.Logic,
            _ => FlagOp.None,
        },
    };

    /// <summary>An ALU op into a register (from a register, an immediate or memory), CMP or TEST with memory, TEST, a
    /// shift by a nonzero immediate, or INC/DEC of a register: writes every arithmetic flag from its operands (INC and
    /// DEC keep CF, which becomes their carry-in: known to the emitter, or computed from the Cpu's fields by the
    /// commit, see DeferredCarryFromFields), what a deferred writer's fix-up can commit from its locals. (An ALU op with a memory source faults before it commits: its own fault exit
    /// sees the state before it, as the region of the writer before it provides.)</summary>
    private static bool DeferrableWriter(UnitInstruction ui) =>
        ui.Extra == UnitExtra.None &&
        (ui.Op.Kind is FastKind.TestRR or FastKind.TestRI or FastKind.TestMR or FastKind.TestMI or FastKind.IncR or
             FastKind.DecR ||
         (ui.Op.Kind is FastKind.AluRR or FastKind.AluRI or FastKind.AluRM && (AluOp)ui.Op.Aux is not (AluOp.Adc or AluOp.Sbb)) ||
         (ui.Op.Kind is FastKind.AluMR or FastKind.AluMI && (AluOp)ui.Op.Aux == AluOp.Cmp) ||
         (ui.Op.Kind == FastKind.ShiftRI && MaskedCount(ui.Op) != 0));

    /// <summary>The unit's page-crossing instruction (it has a guard that exits before it).</summary>
    private static bool CrossesPage(UnitInstruction ui) => ui.Offset is >= 0 and < PageSize && ui.NextOffset > PageSize;

    // After these instructions a deferred rotate's region is over: the run-time pending flag is cleared.
    private bool[] _pendingReset = [];

    /// <summary>Whether instruction <paramref name="k"/> goes on into instruction k + 1 by plain fall-through (no
    /// branch, same page, adjacent): flag needs and deferred-rotate regions continue across that block boundary.</summary>
    private bool FallsInto(int k) => FallsThrough(_ins[k]) && _ins[k].Op.Kind != FastKind.Jcc && Contiguous(k);

    /// <summary>A load into a register (MOV/MOVZX/MOVSX r, m or an ALU r, m other than ADC/SBB) whose only exit is its
    /// fault, taken before anything changes; <paramref name="writesAll"/> when it then writes every flag.</summary>
    private static bool FaultOnlyLoad(UnitInstruction ui, out bool writesAll)
    {
        writesAll = false;
        if (ui.Extra != UnitExtra.None)
        {
            return false;
        }

        switch (ui.Op.Kind)
        {
            case FastKind.MovRM:
            case FastKind.MovzxRM:
            case FastKind.MovsxRM:
                return true;
            case FastKind.AluRM:
                writesAll = true;
                return (AluOp)ui.Op.Aux is not (AluOp.Adc or AluOp.Sbb);
            case FastKind.AluMR:
            case FastKind.AluMI:
                // CMP m, r/imm: a load and a compare, nothing written back.
                writesAll = true;
                return (AluOp)ui.Op.Aux == AluOp.Cmp;
            case FastKind.TestMR:
            case FastKind.TestMI:
                writesAll = true;
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// A store (MOV m, r/imm), PUSH or POP of a register whose only exits, with accesses leaving the unit on a TLB miss
    /// (MissExit), come before it changes anything (the miss, a fault) and which leaves the flags alone: inside a
    /// deferred writer's region those exits commit the writer's state (WriterFix) as a load's do. Not in a demoted
    /// region, where a store's accessor call may report a store into code after the store (its shared exit commits
    /// nothing). So `add rsi, 1; mov [rdx+rcx], cl; test cl, cl` leaves no lazy-flag stores on the main path.
    /// </summary>
    private bool ExitsOnlyBefore(UnitInstruction ui) =>
        !_callOnMiss && ui.Extra == UnitExtra.None &&
        ui.Op.Kind is FastKind.MovMR or FastKind.MovMI or FastKind.PushR or FastKind.PopR;

    /// <summary>A shift's or rotate's immediate count as the instruction masks it (0: no flag changes).</summary>
    private static int MaskedCount(in FastOp op) => (int)op.Imm & (op.Size == 8 ? 0x3F : 0x1F);

    /// <summary>A shift, rotate or SHLD/SHRD whose masked count is zero changes no flag and no value, but a 32-bit
    /// destination is still written (zero-extended): emits that and returns true; false for any other count.</summary>
    private bool EmitZeroCount(in FastOp op, int count)
    {
        if (count != 0)
        {
            return false;
        }

        if (op.Size == 4)
        {
            LdReg(op.Dst, 4);
            StReg(op.Dst, 4);
        }

        return true;
    }

    /// <summary>A register-only instruction that touches no flag.</summary>
    private static bool KeepsFlags(UnitInstruction ui)
    {
        if (ui.Extra != UnitExtra.None)
        {
            return ui.Extra is UnitExtra.XchgRR or UnitExtra.SignExtendAcc or UnitExtra.Bswap or UnitExtra.NotR;
        }

        return ui.Op.Kind is FastKind.Nop or FastKind.MovRR or FastKind.MovRI or FastKind.MovzxRR or FastKind.MovsxRR or
            FastKind.Lea;
    }

    /// <summary>No memory access, helper call, branch or fallback: the instruction cannot leave the unit.</summary>
    private static bool RegisterOnly(UnitInstruction ui)
    {
        if (NativeRegisterOnly(ui, out _))
        {
            return true;
        }

        if (ui.Extra != UnitExtra.None)
        {
            return ui.Extra is UnitExtra.RotateRI or UnitExtra.NotR or UnitExtra.NegR or UnitExtra.ShiftRCl or
                UnitExtra.XchgRR or UnitExtra.SignExtendAcc or UnitExtra.Bswap;
        }

        return ui.Op.Kind is FastKind.Nop or FastKind.MovRR or FastKind.MovRI or FastKind.AluRR or FastKind.AluRI or
            FastKind.TestRR or FastKind.TestRI or FastKind.MovzxRR or FastKind.MovsxRR or FastKind.Lea or FastKind.IncR or
            FastKind.DecR or FastKind.ShiftRI or FastKind.CmovRR or FastKind.SetccR or FastKind.ImulRR or FastKind.ImulRRI;
    }

    private static bool ReadsFlags(UnitInstruction ui)
    {
        if (ui.Extra != UnitExtra.None)
        {
            return NativeReadsFlags(ui);
        }

        return ui.Op.Kind switch
        {
            FastKind.AluRR or FastKind.AluRI => (AluOp)ui.Op.Aux is AluOp.Adc or AluOp.Sbb,
            FastKind.CmovRR or FastKind.SetccR => true,
            _ => false,
        };
    }

    private static bool WritesAllFlags(UnitInstruction ui)
    {
        if (ui.Extra != UnitExtra.None)
        {
            return ui.Extra == UnitExtra.NegR || (NativeRegisterOnly(ui, out bool all) && all);
        }

        return ui.Op.Kind switch
        {
            FastKind.AluRR or FastKind.AluRI or FastKind.TestRR or FastKind.TestRI or FastKind.ImulRR or FastKind.ImulRRI => true,
            FastKind.ShiftRI => MaskedCount(ui.Op) != 0,
            _ => false,
        };
    }

    /// <summary>The current instruction's flag commit was left out: nothing is known about the flags any more (the
    /// fields keep an older state that nothing reads before the next writer).</summary>
    private void FlagsSkipped()
    {
        _known = null;
        ForgetOperands();
    }
}
