// Lazy arithmetic flags in translated code (the same model as Instructions/CpuFlags.cs). A flag-writing instruction
// commits the lazy state (operation, operands, result, size, carry-in) straight into the Cpu's fields, after its
// accesses succeeded, so GetRflags() at any exit is what the interpreter would compute and helper calls need no
// spill/reload. Within a block the last writer's operation and size are known at translation time, and its operands
// are usually still in the IL temporaries it computed them in: conditions after SUB/CMP and logic/TEST compare those
// (or the fields, once a temporary was reused), ZF/SF after any operation and CF after ADD come from its result;
// other conditions call Cpu.Condition. At joins (the entry, branch targets) the knowledge is dropped: several paths
// meet there. A deferred writer (UnitCompiler.FlagLiveness.cs) keeps its state in locals instead of the fields.
//
// Round 3 (JIT cost): the state used to live in six locals, loaded at entry and stored at every exit. They were live
// across every accessor call and exit edge of the unit, which cost the JIT (liveness, SSA, register allocation around
// calls) far more than the stores into the fields cost at run time.
using System.Reflection;
using System.Reflection.Emit;
using Ringvisor.Emulator.Decoding;
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator.Translation;

internal sealed partial class UnitCompiler
{
    private FlagOp? _known;
    private int _knownSize;

    // Where the last writer's operands, result and carry-in can still be found without reading the Cpu's fields (a
    // local not overwritten since, or a constant); null: read the field.
    private Operand? _knownA, _knownB, _knownRes, _knownCin;

    // What the Cpu's lazy-flag fields are known to hold at this point of the block (null: unknown), so a writer can skip
    // storing a value that is already there (the operation and size of a run of CMP/TEST, TEST's zero operands).
    private int? _fieldOp, _fieldSize;
    private ulong? _fieldA, _fieldB;

    /// <summary>A lazy-flag value at translation time: a local (stored masked to <see cref="MaskSize"/>) or a constant.</summary>
    private readonly record struct Operand(LocalBuilder? Local, ulong Const, int MaskSize)
    {
        public bool IsConst => Local is null;

        public static Operand Of(LocalBuilder l, int maskSize = 8) => new(l, 0, maskSize);

        public static Operand Constant(ulong v) => new(null, v, 8);

        public static Operand OfOrZero(LocalBuilder? l) => l is null ? Constant(0) : Of(l);
    }

    private static bool WritesFlags(FastKind k) => k is FastKind.AluRR or FastKind.AluRI or FastKind.AluRM or FastKind.AluMR or
        FastKind.AluMI or FastKind.TestRR or FastKind.TestRI or FastKind.TestMR or FastKind.TestMI or FastKind.IncR or
        FastKind.DecR or FastKind.ShiftRI or FastKind.ImulRR or FastKind.ImulRM or FastKind.ImulRRI;

    /// <summary>Nothing to do: the lazy-flag state is committed into the Cpu's fields as it is produced (the epilogue
    /// calls this).</summary>
    private static void StoreFlags()
    {
    }

    /// <summary>A local is about to be overwritten: it no longer holds the last flag writer's values.</summary>
    private void LocalWritten(LocalBuilder l)
    {
        if (_knownA?.Local == l)
        {
            _knownA = null;
        }

        if (_knownB?.Local == l)
        {
            _knownB = null;
        }

        if (_knownRes?.Local == l)
        {
            _knownRes = null;
        }

        if (_knownCin?.Local == l)
        {
            _knownCin = null;
        }

        if (_cfLocal == l)
        {
            _cfLocal = null;
        }
    }

    private void LdOperand(Operand v)
    {
        if (v.IsConst)
        {
            LdI8(v.Const);
        }
        else
        {
            Ld(v.Local!);
            Mask(v.MaskSize);
        }
    }

    /// <summary>Stores <paramref name="v"/> into a lazy-flag field unless the field is known to hold that constant.</summary>
    private void StoreOperand(FieldInfo f, Operand v, ref ulong? held)
    {
        if (v.IsConst && held == v.Const)
        {
            return;
        }

        held = v.IsConst ? v.Const : null;
        _il.Emit(OpCodes.Ldarg_0);
        LdOperand(v);
        _il.Emit(OpCodes.Stfld, f);
    }

    private void StoreFieldI4(FieldInfo f, int v, ref int? held)
    {
        if (held == v)
        {
            return;
        }

        held = v;
        _il.Emit(OpCodes.Ldarg_0);
        LdI4(v);
        _il.Emit(OpCodes.Stfld, f);
    }

    /// <summary>Pushes a lazy-flag value: from where it is known to be, else from the Cpu's field.</summary>
    private void LdFlag(Operand? v, FieldInfo f)
    {
        if (v is { } k)
        {
            LdOperand(k);
            return;
        }

        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, f);
    }

    private void LdFA() => LdFlag(_knownA, Cpu.FieldFA);

    private void LdFB() => LdFlag(_knownB, Cpu.FieldFB);

    private void LdFRes() => LdFlag(_knownRes, Cpu.FieldFRes);

    /// <summary>Several paths meet here (a block leader, after a helper call): nothing is known about the flags.</summary>
    private void ForgetFlags()
    {
        _known = null;
        ForgetOperands();
        ForgetFieldContents();
    }

    // A deferred writer's lazy state (operands, result, operation | size << 8) and the fix-ups that commit it on the
    // fault exits in its region, one per exit they continue to.
    private LocalBuilder? _dA, _dB, _dRes, _dOpSize;
    private readonly Dictionary<Label, Label> _writerFixes = [];

    /// <summary>The fault exit of a load in a deferred writer's region: commits the writer's state, then continues to
    /// <paramref name="next"/> (a deferred rotate's fix-up, which patches its CF/OF on top, or the shared fault exit).</summary>
    private Label WriterFix(Label next)
    {
        if (!_writerFixes.TryGetValue(next, out var fix))
        {
            fix = _il.DefineLabel();
            _writerFixes[next] = fix;
        }

        return fix;
    }

    private void EmitWriterFixes()
    {
        foreach (var (next, fix) in _writerFixes)
        {
            _il.MarkLabel(fix);
            EmitCommitDeferred();
            _il.Emit(OpCodes.Br, next);
        }
    }

    /// <summary>Nothing is known any more about what the Cpu's lazy-flag fields hold.</summary>
    private void ForgetFieldContents()
    {
        _fieldOp = _fieldSize = null;
        _fieldA = _fieldB = null;
    }

    // Whether the Cpu's lazy-flag fields are stale at this point of the emission: the last flag writer was deferred
    // (its state is in _dA, _dB, _dRes, _dOpSize) and nothing has committed it since. Every exit made meanwhile
    // commits it first (stubs: ExitStub.CommitFlags; fault exits: WriterFix); an edge to a place where the flags are
    // live commits it; anything else that could read the fields commits it on the main path first.
    private bool _deferActive;

    /// <summary>Emits the stores of the deferred writer's state into the Cpu's lazy-flag fields (no change to what
    /// the emitter knows: used on side paths too).</summary>
    private void EmitCommitDeferred()
    {
        if (_anyDeferredCarry)
        {
            // A deferred INC/DEC's carry-in first: computed from the fields (still the state before it) when the
            // emitter did not know it.
            var skip = _il.DefineLabel();
            var have = _il.DefineLabel();
            Ld(_dOpSize!);
            LdI4(DeferredCarryFlag);
            Op(OpCodes.And);
            _il.Emit(OpCodes.Brfalse, skip);
            _il.Emit(OpCodes.Ldarg_0);
            Ld(_dCin!);
            _il.Emit(OpCodes.Dup);
            LdI4(DeferredCarryFromFields);
            _il.Emit(OpCodes.Bne_Un, have);
            Op(OpCodes.Pop);
            _il.Emit(OpCodes.Ldarg_0);
            Call(Cpu.MethodGetCf);
            _il.MarkLabel(have);
            _il.Emit(OpCodes.Stfld, Cpu.FieldFCarryIn);
            _il.MarkLabel(skip);
        }

        _il.Emit(OpCodes.Ldarg_0);
        Ld(_dA!);
        _il.Emit(OpCodes.Stfld, Cpu.FieldFA);
        _il.Emit(OpCodes.Ldarg_0);
        Ld(_dB!);
        _il.Emit(OpCodes.Stfld, Cpu.FieldFB);
        _il.Emit(OpCodes.Ldarg_0);
        Ld(_dRes!);
        _il.Emit(OpCodes.Stfld, Cpu.FieldFRes);
        _il.Emit(OpCodes.Ldarg_0);
        Ld(_dOpSize!);
        LdI4(0xFF);
        Op(OpCodes.And);
        _il.Emit(OpCodes.Stfld, Cpu.FieldFlagOp);
        _il.Emit(OpCodes.Ldarg_0);
        Ld(_dOpSize!);
        LdI4(8);
        Op(OpCodes.Shr);
        LdI4(0xFF);
        Op(OpCodes.And);
        _il.Emit(OpCodes.Stfld, Cpu.FieldFSize);
    }

    // A deferred writer's _dOpSize bit for "has a carry-in in _dCin" (INC/DEC), and the _dCin value that means "compute
    // it from the Cpu's fields at the commit" (they still hold the state before the writer; 2, which the carry tokens'
    // mod-3 mapping relies on).
    private const int DeferredCarryFlag = 1 << 16;
    private const int DeferredCarryFromFields = 2;
    private LocalBuilder? _dCin;
    private bool _anyDeferredCarry;

    // Per instruction: the carry token of a CarryJoin some edge hands CF to (null elsewhere). 0: the Cpu's fields hold
    // the flags; 1 + CF: the edge's deferred writer left CF (its state is in locals, the fields are stale). The INC/DEC
    // at the join reads it and sets it back to 0.
    private LocalBuilder?[] _carryToken = [];

    /// <summary>
    /// On an edge to join <paramref name="j"/> with a deferred writer's state in locals: when the join's INC/DEC takes a
    /// token (CarryJoin) and the writer's CF can be computed here, stores 1 + CF into the token instead of committing
    /// the writer (the INC/DEC's own state replaces every flag). False when the edge must commit.
    /// </summary>
    private bool EmitCarryHandoff(int j)
    {
        if (_carryToken[j] is not { } token)
        {
            return false;
        }

        switch (_known)
        {
            case FlagOp.Sub when _knownA is not null && _knownB is not null:
            case FlagOp.Add when _knownRes is not null && _knownA is not null:
            case FlagOp.Logic:
                EmitCarry();
                LdI4(1);
                Op(OpCodes.Add);
                St(token);
                return true;
            case FlagOp.Inc or FlagOp.Dec when _dCin is not null:
                // A deferred INC/DEC: its carry-in 0/1 becomes token 1/2, and "from the fields" (2: they hold the
                // state before it, whose CF it kept) token 0: (cin + 1) mod 3.
                Ld(_dCin);
                LdI4(1);
                Op(OpCodes.Add);
                LdI4(DeferredCarryFromFields + 1);
                Op(OpCodes.Rem_Un);
                St(token);
                return true;

            default:
                return false;
        }
    }

    /// <summary>The carry-in of the INC/DEC at a join that takes a token (CarryJoin), as an int32 0/1 in _c0 or
    /// DeferredCarryFromFields when <paramref name="fromFieldsLater"/> (a deferred INC/DEC's commit computes it);
    /// otherwise computed from the fields now. Resets the token.</summary>
    private void EmitCarryFromToken(LocalBuilder token, bool fromFieldsLater)
    {
        if (fromFieldsLater)
        {
            // Tokens 0, 1, 2 -> DeferredCarryFromFields, 0, 1: (token + 2) mod 3, the inverse of EmitCarryHandoff's.
            Ld(token);
            LdI4(DeferredCarryFromFields);
            Op(OpCodes.Add);
            LdI4(DeferredCarryFromFields + 1);
            Op(OpCodes.Rem_Un);
            St(_c0);
        }
        else
        {
            var fromFields = _il.DefineLabel();
            var done = _il.DefineLabel();
            Ld(token);
            _il.Emit(OpCodes.Brfalse, fromFields);
            Ld(token);
            LdI4(1);
            Op(OpCodes.Sub);
            St(_c0);
            _il.Emit(OpCodes.Br, done);
            _il.MarkLabel(fromFields);
            EmitCarry();
            St(_c0);
            _il.MarkLabel(done);
        }

        LdI4(0);
        St(token);
    }

    /// <summary>Commits the deferred writer's state on the main path: from here on the fields hold it.</summary>
    private void CommitDeferredNow()
    {
        if (!_deferActive)
        {
            return;
        }

        EmitCommitDeferred();
        _deferActive = false;
        ForgetFieldContents();
    }

    /// <summary>After the current instruction: a deferred writer's region ends where the next instruction is a block
    /// leader (or there is none). The fall-through path commits the state when the flags are live there (a
    /// non-adjacent fall-through went through EmitGoto, which did the same for its edge).</summary>
    private void EndDeferredRegion(bool falls)
    {
        if (!_deferActive)
        {
            return;
        }

        int next = _k + 1;
        if (falls && next < _ins.Count && !_leader[next])
        {
            return;
        }

        if (falls && next < _ins.Count && Contiguous(_k) && FlagsLiveAt(next))
        {
            EmitCommitDeferred();
        }

        // What is known about the flags stays true (the locals hold the writer's state); the fields are either
        // committed now or dead on this path.
        _deferActive = false;
        ForgetFieldContents();
    }

    private void ForgetOperands()
    {
        _knownA = _knownB = _knownRes = _knownCin = null;
        _cfLocal = null;
    }

    /// <summary>Stores the operands of a flag writer (part of its commit: after its accesses succeeded). Separate from
    /// <see cref="SetFlagResult"/> so a register operand can be stored before the instruction overwrites it.</summary>
    private void SetFlagOperands(Operand a, Operand b)
    {
        if (WriterFlagsDeferred)
        {
            // Into the writer's locals (the fields keep the state before it on the main path; see _writerDeferred).
            // Readers in the region read these copies: the registers the operands came from may be overwritten.
            LdOperand(a);
            St(_dA ??= _il.DeclareLocal(typeof(ulong)));
            LdOperand(b);
            St(_dB ??= _il.DeclareLocal(typeof(ulong)));
            _knownA = a.IsConst ? a : Operand.Of(_dA);
            _knownB = b.IsConst ? b : Operand.Of(_dB);
            return;
        }

        StoreOperand(Cpu.FieldFA, a, ref _fieldA);
        StoreOperand(Cpu.FieldFB, b, ref _fieldB);
        _knownA = a;
        _knownB = b;
    }

    /// <summary>Completes the commit of a lazy flag result: result, operation, size, carry-in (int32 0/1 local).</summary>
    private void SetFlagResult(FlagOp op, Operand res, int size, LocalBuilder? carryIn = null, bool carryFromFields = false)
    {
        if (WriterFlagsDeferred)
        {
            LdOperand(res);
            St(_dRes ??= _il.DeclareLocal(typeof(ulong)));
            bool hasCarry = carryIn is not null || carryFromFields;
            if (hasCarry)
            {
                // INC/DEC: the carry-in goes with the state (DeferredCarryFlag; a commit computes it from the fields
                // when it is not known here).
                if (carryIn is not null)
                {
                    Ld(carryIn);
                }
                else
                {
                    LdI4(DeferredCarryFromFields);
                }

                St(_dCin ??= _il.DeclareLocal(typeof(int)));
                _anyDeferredCarry = true;
            }

            LdI4((int)op | (size << 8) | (hasCarry ? DeferredCarryFlag : 0));
            St(_dOpSize ??= _il.DeclareLocal(typeof(int)));
            _known = op;
            _knownSize = size;
            _knownRes = res.IsConst ? res : Operand.Of(_dRes);

            // No reader of CF is in the region (ScanDeferredWriters); after a commit the field holds it.
            _knownCin = null;
            _deferActive = true;
            return;
        }

        _deferActive = false;

        _il.Emit(OpCodes.Ldarg_0);
        LdOperand(res);
        _il.Emit(OpCodes.Stfld, Cpu.FieldFRes);
        StoreFieldI4(Cpu.FieldFlagOp, (int)op, ref _fieldOp);
        StoreFieldI4(Cpu.FieldFSize, size, ref _fieldSize);
        if (carryIn is not null)
        {
            _il.Emit(OpCodes.Ldarg_0);
            Ld(carryIn);
            _il.Emit(OpCodes.Stfld, Cpu.FieldFCarryIn);
            _knownCin = Operand.Of(carryIn, 4);
        }
        else
        {
            _knownCin = null;
        }

        _known = op;
        _knownSize = size;
        _knownRes = res;
    }

    /// <summary>Commits a lazy flag result (after the instruction's stores succeeded). A null operand is 0.</summary>
    private void SetFlags(FlagOp op, LocalBuilder? a, LocalBuilder? b, LocalBuilder res, int size, LocalBuilder? carryIn = null) =>
        SetFlags(op, Operand.OfOrZero(a), Operand.OfOrZero(b), Operand.Of(res), size, carryIn);

    private void SetFlags(FlagOp op, Operand a, Operand b, Operand res, int size, LocalBuilder? carryIn = null)
    {
        SetFlagOperands(a, b);
        SetFlagResult(op, res, size, carryIn);
    }

    /// <summary>Commits a lazy flag result with a constant second operand (shift counts, INC/DEC's 1).</summary>
    private void SetFlagsConstB(FlagOp op, LocalBuilder a, ulong b, LocalBuilder res, int size, LocalBuilder? carryIn = null) =>
        SetFlags(op, Operand.Of(a), Operand.Constant(b), Operand.Of(res), size, carryIn);

    /// <summary>Commits flags computed eagerly (IMUL): CF and OF as given (int32 locals), ZF/SF/PF from the result.</summary>
    private void SetEagerFlags(LocalBuilder res, int size, LocalBuilder cf, LocalBuilder of)
    {
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, Cpu.FieldFlags);
        LdI8(~Cpu.ArithFlags);
        Op(OpCodes.And);
        Ld(res);
        LdI4(size);
        Ld(cf);
        Ld(of);
        Call(Cpu.MethodEagerArithBits);
        Op(OpCodes.Or);
        _il.Emit(OpCodes.Stfld, Cpu.FieldFlags);
        StoreFieldI4(Cpu.FieldFlagOp, (int)FlagOp.None, ref _fieldOp);
        _deferActive = false;
        _known = FlagOp.None;
        ForgetOperands();
    }

    /// <summary>Pushes CF (int32 0/1) as Cpu.GetCf() would return it now.</summary>
    private void EmitCarry()
    {
        switch (_known)
        {
            case FlagOp.Sub:
                LdFA();
                Mask(_knownSize);
                LdFB();
                Mask(_knownSize);
                Op(OpCodes.Clt_Un);
                return;
            case FlagOp.Add:
                LdFRes();
                Mask(_knownSize);
                LdFA();
                Mask(_knownSize);
                Op(OpCodes.Clt_Un);
                return;
            case FlagOp.Logic:
                LdI4(0);
                return;
            case FlagOp.Inc:
            case FlagOp.Dec:
                LdFlag(_knownCin, Cpu.FieldFCarryIn);
                return;
            default:
                CommitDeferredNow();
                _il.Emit(OpCodes.Ldarg_0);
                Call(Cpu.MethodGetCf);
                return;
        }
    }

    /// <summary>Whether EmitCondition evaluates <paramref name="cc"/> after a writer of <paramref name="op"/> from what
    /// it knows, without the Cpu's fields (a deferred writer's region may hold such readers only).</summary>
    private static bool ConditionInline(FlagOp op, int cc) => op switch
    {
        FlagOp.Sub => cc is (>= 2 and <= 9) or (>= 12 and <= 15),
        FlagOp.Logic => cc is (>= 2 and <= 9) or (>= 12 and <= 15),
        FlagOp.Add => cc is >= 2 and <= 9,
        FlagOp.None => false,
        _ => cc is 4 or 5 or 8 or 9,
    };

    /// <summary>Pushes condition <paramref name="cc"/> (SDM Vol. 1 Appendix B, low 4 bits of Jcc) as int32 0/1.</summary>
    private void EmitCondition(int cc)
    {
        if (_known == FlagOp.None && _cfLocal is not null && cc is 2 or 3)
        {
            // B/AE right after BT*: CF is still in the local it was materialised from.
            Ld(_cfLocal);
            if (cc == 3)
            {
                Not();
            }

            return;
        }

        if (_known == FlagOp.Sub && cc is 4 or 5 && _knownA is null && _knownRes is not null)
        {
            // E/NE after SUB whose destination was overwritten: the result is still at hand (a == b iff a - b == 0).
            LdZero(_knownSize);
            if (cc == 5)
            {
                Not();
            }

            return;
        }

        if (_known == FlagOp.Sub && cc is (>= 2 and <= 7) or (>= 12 and <= 15))
        {
            int s = _knownSize;
            bool signed = cc >= 12;
            LdFA();
            if (signed)
            {
                SignExtend(s);
            }
            else
            {
                Mask(s);
            }

            LdFB();
            if (signed)
            {
                SignExtend(s);
            }
            else
            {
                Mask(s);
            }

            switch (cc)
            {
                case 2: Op(OpCodes.Clt_Un); break;                 // B: a < b
                case 3: Op(OpCodes.Clt_Un); Not(); break;          // AE
                case 4: Op(OpCodes.Ceq); break;                    // E
                case 5: Op(OpCodes.Ceq); Not(); break;             // NE
                case 6: Op(OpCodes.Cgt_Un); Not(); break;          // BE
                case 7: Op(OpCodes.Cgt_Un); break;                 // A
                case 12: Op(OpCodes.Clt); break;                   // L
                case 13: Op(OpCodes.Clt); Not(); break;            // GE
                case 14: Op(OpCodes.Cgt); Not(); break;            // LE
                default: Op(OpCodes.Cgt); break;                   // G
            }

            return;
        }

        if (_known == FlagOp.Logic && cc is (>= 2 and <= 9) or (>= 12 and <= 15))
        {
            int s = _knownSize;
            switch (cc)
            {
                case 2:
                    LdI4(0);
                    return;
                case 3:
                    LdI4(1);
                    return;
                case 4:
                case 6:
                    LdZero(s);
                    return;
                case 5:
                case 7:
                    LdZero(s);
                    Not();
                    return;
                case 8:
                case 12:
                    LdSign(s);
                    return;
                case 9:
                case 13:
                    LdSign(s);
                    Not();
                    return;
                case 14:
                    LdZero(s);
                    LdSign(s);
                    Op(OpCodes.Or);
                    return;
                default:
                    LdZero(s);
                    LdSign(s);
                    Op(OpCodes.Or);
                    Not();
                    return;
            }
        }

        if (_known is { } any && any != FlagOp.None && cc is 4 or 5 or 8 or 9)
        {
            // ZF and SF of any lazy operation come from its result (Cpu.GetZf, GetSf).
            if (cc is 4 or 5)
            {
                LdZero(_knownSize);
            }
            else
            {
                LdSign(_knownSize);
            }

            if (cc is 5 or 9)
            {
                Not();
            }

            return;
        }

        if (_known == FlagOp.Add && cc is >= 2 and <= 7)
        {
            // CF of an ADD is (result < a) at its size; BE/A add ZF.
            EmitCarry();
            if (cc is 6 or 7)
            {
                LdZero(_knownSize);
                Op(OpCodes.Or);
            }

            if (cc is 3 or 7)
            {
                Not();
            }

            return;
        }

        // The general case: the Cpu evaluates its lazy state.
        CommitDeferredNow();
        _il.Emit(OpCodes.Ldarg_0);
        LdI4(cc);
        Call(Cpu.MethodCondition);
    }

    /// <summary>Pushes (fRes masked to size) == 0.</summary>
    private void LdZero(int size)
    {
        LdFRes();
        Mask(size);
        LdI8(0);
        Op(OpCodes.Ceq);
    }

    /// <summary>Pushes the sign bit of fRes at size.</summary>
    private void LdSign(int size)
    {
        LdFRes();
        SignExtend(size);
        LdI8(0);
        Op(OpCodes.Clt);
    }

    /// <summary>Logical not of the int32 0/1 on the stack.</summary>
    private void Not()
    {
        LdI4(0);
        Op(OpCodes.Ceq);
    }
}
