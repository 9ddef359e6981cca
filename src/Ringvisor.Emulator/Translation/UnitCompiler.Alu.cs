// Data movement and integer ALU forms (MOV/MOVZX/MOVSX/LEA, ALU ops, TEST, INC/DEC, shifts by an immediate, IMUL,
// CMOVcc, SETcc), mirroring the FastKind cases of Instructions/InterpFast.cs.
using System.Reflection.Emit;
using Ringvisor.Emulator.Decoding;
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator.Translation;

internal sealed partial class UnitCompiler
{
    /// <summary>Emits one instruction; returns whether execution can fall through to the next one.</summary>
    private bool EmitInstruction(UnitInstruction ui)
    {
        ref var op = ref ui.Op;
        int size = op.Size;
        switch (op.Kind)
        {
            case FastKind.Nop:
                return true;
            case FastKind.MovRR:
                LdReg(op.Src);
                StReg(op.Dst, size);
                return true;
            case FastKind.MovRI:
                LdI8(op.Imm);
                StReg(op.Dst, size);
                return true;
            case FastKind.MovRM:
                EmitReadOperand(ref op, size);
                StReg(op.Dst, size);
                return true;
            case FastKind.MovMR:
                {
                    int src = op.Src;
                    EmitPlainStore(ref op, size, () => LdReg(src));
                    return true;
                }

            case FastKind.MovMI:
                {
                    ulong imm = op.Imm;
                    EmitPlainStore(ref op, size, () => LdI8(imm));
                    return true;
                }

            case FastKind.AluRR:
                EmitAluRegister(ref op, Operand.Of(_reg[op.Src]!, size));
                return true;
            case FastKind.AluRI:
                EmitAluRegister(ref op, Operand.Constant(op.Imm));
                return true;
            case FastKind.AluRM:
                EmitReadOperand(ref op, size);
                St(_t1);
                EmitAluRegister(ref op, Operand.Of(_t1));
                return true;
            case FastKind.AluMR:
            case FastKind.AluMI:
                EmitAluMemory(ui, ref op);
                return true;
            case FastKind.TestRR:
                if (FlagsDead)
                {
                    FlagsSkipped();
                    return true;
                }

                LdReg(op.Dst, size);
                LdReg(op.Src);
                Op(OpCodes.And);
                St(_t2);
                SetFlags(FlagOp.Logic, null, null, _t2, size);
                return true;
            case FastKind.TestRI:
                if (FlagsDead)
                {
                    FlagsSkipped();
                    return true;
                }

                LdReg(op.Dst, size);
                LdI8(op.Imm);
                Op(OpCodes.And);
                St(_t2);
                SetFlags(FlagOp.Logic, null, null, _t2, size);
                return true;
            case FastKind.TestMR:
            case FastKind.TestMI:
                EmitReadOperand(ref op, size);
                if (FlagsDead)
                {
                    // The read stays: it may fault.
                    Op(OpCodes.Pop);
                    FlagsSkipped();
                    return true;
                }

                if (op.Kind == FastKind.TestMR)
                {
                    LdReg(op.Src);
                }
                else
                {
                    LdI8(op.Imm);
                }

                Op(OpCodes.And);
                Mask(size);
                St(_t2);
                SetFlags(FlagOp.Logic, null, null, _t2, size);
                return true;
            case FastKind.MovzxRR:
                LdReg(op.Src, op.SrcSize);
                StReg(op.Dst, size);
                return true;
            case FastKind.MovsxRR:
                LdReg(op.Src);
                SignExtend(op.SrcSize);
                StReg(op.Dst, size);
                return true;
            case FastKind.MovzxRM:
            case FastKind.MovsxRM:
                EmitReadOperand(ref op, op.SrcSize);
                if (op.Kind == FastKind.MovsxRM)
                {
                    SignExtend(op.SrcSize);
                }

                StReg(op.Dst, size);
                return true;
            case FastKind.Lea:
                EmitEffectiveAddress(ref op);
                StReg(op.Dst, size);
                return true;
            case FastKind.IncR:
            case FastKind.DecR:
                {
                    // INC/DEC keep CF: the carry-in is the current CF, read before the fields change.
                    bool inc = op.Kind == FastKind.IncR;
                    if (FlagsDead)
                    {
                        LdReg(op.Dst, size);
                        LdI8(1);
                        Op(inc ? OpCodes.Add : OpCodes.Sub);
                        StReg(op.Dst, size);
                        FlagsSkipped();
                        return true;
                    }

                    // Deferred with nothing known about the flags (the fields hold the state before it): the commit
                    // computes the carry-in from the fields (DeferredCarryFromFields), so the main path makes no call.
                    bool carryFromFields = WriterFlagsDeferred && _known is null && !_deferActive;
                    if (_carryToken[_k] is { } token)
                    {
                        // At a join an edge may have handed CF over (CarryJoin); _c0 is then a deferred commit's
                        // carry-in, DeferredCarryFromFields included.
                        EmitCarryFromToken(token, carryFromFields);
                        carryFromFields = false;
                    }
                    else if (!carryFromFields)
                    {
                        EmitCarry();
                        St(_c0);
                    }

                    SetFlagOperands(Operand.Of(_reg[op.Dst]!, size), Operand.Constant(1));
                    LdReg(op.Dst, size);
                    LdI8(1);
                    Op(inc ? OpCodes.Add : OpCodes.Sub);
                    Mask(size);
                    St(_t2);
                    Ld(_t2);
                    StReg(op.Dst, size);
                    SetFlagResult(inc ? FlagOp.Inc : FlagOp.Dec, Operand.Of(_t2), size, carryFromFields ? null : _c0,
                        carryFromFields);
                    return true;
                }

            case FastKind.ShiftRI:
                EmitShift(ref op);
                return true;
            case FastKind.CmovRR:
                EmitCondition(op.Aux);
                St(_c0);
                EmitSelect(op.Src);
                StReg(op.Dst, size);
                return true;
            case FastKind.CmovRM:
                EmitReadOperand(ref op, size);
                St(_val);
                EmitCondition(op.Aux);
                St(_c0);
                {
                    var keep = _il.DefineLabel();
                    var done = _il.DefineLabel();
                    Ld(_c0);
                    _il.Emit(OpCodes.Brfalse, keep);
                    Ld(_val);
                    _il.Emit(OpCodes.Br, done);
                    _il.MarkLabel(keep);
                    LdReg(op.Dst);
                    _il.MarkLabel(done);
                }

                StReg(op.Dst, size);
                return true;
            case FastKind.SetccR:
                EmitCondition(op.Aux);
                Op(OpCodes.Conv_U8);
                StReg(op.Dst, 1);
                return true;
            case FastKind.ImulRR:
                LdReg(op.Dst);
                St(_t0);
                LdReg(op.Src);
                St(_t1);
                EmitImul(ref op);
                return true;
            case FastKind.ImulRRI:
                LdReg(op.Src);
                St(_t0);
                LdI8(op.Imm);
                St(_t1);
                EmitImul(ref op);
                return true;
            case FastKind.ImulRM:
                EmitReadOperand(ref op, size);
                St(_t1);
                LdReg(op.Dst);
                St(_t0);
                EmitImul(ref op);
                return true;
            default:
                return EmitFlow(ui, ref op);
        }
    }

    /// <summary>Pushes _c0 ? reg[src] : reg[dst] (CMOVcc writes the destination either way).</summary>
    private void EmitSelect(int src)
    {
        var op = Cur.Op;
        var keep = _il.DefineLabel();
        var done = _il.DefineLabel();
        Ld(_c0);
        _il.Emit(OpCodes.Brfalse, keep);
        LdReg(src);
        _il.Emit(OpCodes.Br, done);
        _il.MarkLabel(keep);
        LdReg(op.Dst);
        _il.MarkLabel(done);
    }

    private static FlagOp FlagOpOf(AluOp aop) => aop switch
    {
        AluOp.Add => FlagOp.Add,
        AluOp.Adc => FlagOp.Adc,
        AluOp.Sub or AluOp.Cmp => FlagOp.Sub,
        AluOp.Sbb => FlagOp.Sbb,
        _ => FlagOp.Logic,
    };

    /// <summary>res (_t2) = a op b, masked (<paramref name="a"/> and <paramref name="b"/> push loads only); _c0 =
    /// carry-in for ADC/SBB, which the caller read before the flag fields changed.</summary>
    private void EmitAluCompute(AluOp aop, int size, Action a, Action b)
    {
        a();
        b();
        switch (aop)
        {
            case AluOp.Add:
                Op(OpCodes.Add);
                break;
            case AluOp.Or:
                Op(OpCodes.Or);
                break;
            case AluOp.Adc:
                Op(OpCodes.Add);
                Ld(_c0);
                Op(OpCodes.Conv_U8);
                Op(OpCodes.Add);
                break;
            case AluOp.Sbb:
                Op(OpCodes.Sub);
                Ld(_c0);
                Op(OpCodes.Conv_U8);
                Op(OpCodes.Sub);
                break;
            case AluOp.And:
                Op(OpCodes.And);
                break;
            case AluOp.Xor:
                Op(OpCodes.Xor);
                break;
            default:
                Op(OpCodes.Sub);
                break;
        }

        Mask(size);
        St(_t2);
    }

    private void EmitCarryIn(AluOp aop)
    {
        if (aop is AluOp.Adc or AluOp.Sbb)
        {
            EmitCarry();
            St(_c0);
        }
    }

    /// <summary>
    /// dst = dst op b with lazy flags. The operands go straight from the register (or constant, or the loaded value)
    /// into the flag fields, the destination's before it is overwritten: fewer IL statements than copying both into
    /// temporaries first.
    /// </summary>
    private void EmitAluRegister(ref FastOp op, Operand b)
    {
        var aop = (AluOp)op.Aux;
        int size = op.Size;
        int dst = op.Dst;
        EmitCarryIn(aop);
        if (FlagsDead)
        {
            if (aop != AluOp.Cmp)
            {
                EmitAluCompute(aop, size, () => LdReg(dst, size), () => LdOperand(b));
                Ld(_t2);
                StReg(dst, size);
            }

            FlagsSkipped();
            return;
        }

        SetFlagOperands(Operand.Of(_reg[op.Dst]!, size), b);
        EmitAluCompute(aop, size, () => LdReg(dst, size), () => LdOperand(b));
        if (aop != AluOp.Cmp)
        {
            Ld(_t2);
            StReg(op.Dst, size);
        }

        SetFlagResult(FlagOpOf(aop), Operand.Of(_t2), size, aop is AluOp.Adc or AluOp.Sbb ? _c0 : null);
    }

    private void EmitAluMemory(UnitInstruction ui, ref FastOp op)
    {
        var aop = (AluOp)op.Aux;
        int size = op.Size;
        EmitLinear(ref op);
        EmitReadLinear(size);
        St(_t0);
        var b = op.Kind == FastKind.AluMR ? Operand.Of(_reg[op.Src]!, size) : Operand.Constant(op.Imm);
        EmitCarryIn(aop);
        EmitAluCompute(aop, size, () => Ld(_t0), () => LdOperand(b));
        if (aop != AluOp.Cmp)
        {
            EmitWrite(size, () => Ld(_la), () => Ld(_t2), plain: false);
        }

        SetFlags(FlagOpOf(aop), Operand.Of(_t0), b, Operand.Of(_t2), size,
            aop is AluOp.Adc or AluOp.Sbb ? _c0 : null);
        if (aop != AluOp.Cmp)
        {
            EmitStoreCheck(ui.NextOffset, false);
        }
    }

    private void EmitShift(ref FastOp op)
    {
        int size = op.Size;
        int count = MaskedCount(op);
        if (EmitZeroCount(op, count))
        {
            return;
        }

        LdReg(op.Dst, size);
        St(_t0);

        if (FlagsDead)
        {
            Ld(_t0);
            if (op.Aux == 2)
            {
                SignExtend(size);
            }

            LdI4(op.Aux == 2 ? Math.Min(count, 63) : count);
            Op(op.Aux switch { 0 => OpCodes.Shl, 1 => OpCodes.Shr_Un, _ => OpCodes.Shr });
            StReg(op.Dst, size);
            FlagsSkipped();
            return;
        }

        switch (op.Aux)
        {
            case 0:
                Ld(_t0);
                LdI4(count);
                Op(OpCodes.Shl);
                Mask(size);
                St(_t2);
                Ld(_t2);
                StReg(op.Dst, size);
                SetFlagsConstB(FlagOp.Shl, _t0, (ulong)count, _t2, size);
                return;
            case 1:
                Ld(_t0);
                LdI4(count);
                Op(OpCodes.Shr_Un);
                St(_t2);
                Ld(_t2);
                StReg(op.Dst, size);
                SetFlagsConstB(FlagOp.Shr, _t0, (ulong)count, _t2, size);
                return;
            default:
                // Lazy SAR records the sign-extended operand (CpuFlags.GetCf shifts it arithmetically).
                Ld(_t0);
                SignExtend(size);
                St(_t1);
                Ld(_t1);
                LdI4(Math.Min(count, 63));
                Op(OpCodes.Shr);
                Mask(size);
                St(_t2);
                Ld(_t2);
                StReg(op.Dst, size);
                SetFlagsConstB(FlagOp.Sar, _t1, (ulong)count, _t2, size);
                return;
        }
    }

    /// <summary>IMUL with a truncated 32/64-bit product of _t0 and _t1: CF = OF = the signed product does not fit.</summary>
    private void EmitImul(ref FastOp op)
    {
        if (FlagsDead)
        {
            // Only the truncated product: the same bits signed or unsigned.
            Ld(_t0);
            Ld(_t1);
            Op(OpCodes.Mul);
            StReg(op.Dst, op.Size);
            FlagsSkipped();
            return;
        }

        if (op.Size == 8)
        {
            Ld(_t0);
            Ld(_t1);
            _il.Emit(OpCodes.Ldloca, _rv);
            LocalWritten(_rv);
            Call(Cpu.MethodBigMul);
            Ld(_rv);
            St(_t2);
            // hi != lo >> 63 (arithmetic)
            Ld(_t2);
            LdI4(63);
            Op(OpCodes.Shr);
            Op(OpCodes.Ceq);
            Not();
            St(_c0);
            Ld(_t2);
            St(_reg[op.Dst]!);
            SetEagerFlags(_t2, 8, _c0, _c0);
            return;
        }

        Ld(_t0);
        SignExtend(4);
        Ld(_t1);
        SignExtend(4);
        Op(OpCodes.Mul);
        St(_t2);
        Ld(_t2);
        Ld(_t2);
        SignExtend(4);
        Op(OpCodes.Ceq);
        Not();
        St(_c0);
        Ld(_t2);
        StReg(op.Dst, 4);
        SetEagerFlags(_t2, 4, _c0, _c0);
    }
}
