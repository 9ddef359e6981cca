// Forms that used to run as helper calls and are emitted as IL now (the most frequent ones on the Linux boot): MUL/IMUL
// one-operand, DIV/IDIV (a #DE is left to the interpreter through a Fallback exit, which raises it exactly), BSF/BSR/
// TZCNT/LZCNT, BT/BTS/BTR/BTC with the bit inside the operand, CMPXCHG/XADD without LOCK, SHLD/SHRD by an immediate
// and 8-bit ALU forms with AH/CH/DH/BH. Semantics mirror Instructions/InterpMulDiv.cs, InterpBit.cs, InterpAlu.cs and
// InterpShift.cs, including the flags those leave (BT* and BSF/BSR materialise the flags and patch CF or ZF; MUL,
// IMUL and SHLD/SHRD set them eagerly; DIV leaves them; CMPXCHG/XADD record SUB/ADD lazily).
using System.Numerics;
using System.Reflection;
using System.Reflection.Emit;
using Iced.Intel;
using Label = System.Reflection.Emit.Label;
using Ringvisor.Emulator.Decoding;
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator.Translation;

internal sealed partial class UnitCompiler
{
    // BitTest: the offset is the immediate (Imm), not a register.
    private const byte BitTestImmediate = 4;

    // AluHigh8: Aux values beyond AluOp for TEST and MOV, and the SrcSize bits.
    private const byte HighByteTest = 0xFE;
    private const byte HighByteMov = 0xFF;
    private const byte HighDst = 1;
    private const byte HighSrc = 2;
    private const byte HighImmediate = 4;

    private static readonly MethodInfo s_getRflags = typeof(Cpu).GetMethod(nameof(Cpu.GetRflags))!;

    private static readonly MethodInfo s_bigMulUnsigned =
        typeof(Math).GetMethod(nameof(Math.BigMul), [typeof(ulong), typeof(ulong), typeof(ulong).MakeByRefType()])!;

    private static readonly MethodInfo s_trailingZeros = typeof(BitOperations).GetMethod(nameof(BitOperations.TrailingZeroCount), [typeof(ulong)])!;
    private static readonly MethodInfo s_leadingZeros = typeof(BitOperations).GetMethod(nameof(BitOperations.LeadingZeroCount), [typeof(ulong)])!;
    private static readonly MethodInfo s_divideUnsigned = typeof(ScalarOps).GetMethod(nameof(ScalarOps.DivideUnsigned))!;
    private static readonly MethodInfo s_divideSigned = typeof(ScalarOps).GetMethod(nameof(ScalarOps.DivideSigned))!;
    private static readonly FieldInfo s_divOk = typeof(DivResult).GetField(nameof(DivResult.Ok))!;
    private static readonly FieldInfo s_divQuotient = typeof(DivResult).GetField(nameof(DivResult.Quotient))!;
    private static readonly FieldInfo s_divRemainder = typeof(DivResult).GetField(nameof(DivResult.Remainder))!;

    // CMPXCHG/XADD: FastOp.Aux of the LOCK-prefixed memory forms (host atomics on the fast path).
    private const byte LockedAccess = 1;

    private static readonly MethodInfo s_casInt32 = typeof(Interlocked).GetMethod(nameof(Interlocked.CompareExchange), [typeof(int).MakeByRefType(), typeof(int), typeof(int)])!;
    private static readonly MethodInfo s_casInt64 = typeof(Interlocked).GetMethod(nameof(Interlocked.CompareExchange), [typeof(long).MakeByRefType(), typeof(long), typeof(long)])!;
    private static readonly MethodInfo s_addInt32 = typeof(Interlocked).GetMethod(nameof(Interlocked.Add), [typeof(int).MakeByRefType(), typeof(int)])!;
    private static readonly MethodInfo s_xchgInt32 = typeof(Interlocked).GetMethod(nameof(Interlocked.Exchange), [typeof(int).MakeByRefType(), typeof(int)])!;
    private static readonly MethodInfo s_xchgInt64 = typeof(Interlocked).GetMethod(nameof(Interlocked.Exchange), [typeof(long).MakeByRefType(), typeof(long)])!;
    private static readonly MethodInfo s_addInt64 = typeof(Interlocked).GetMethod(nameof(Interlocked.Add), [typeof(long).MakeByRefType(), typeof(long)])!;

    private LocalBuilder? _div;
    private LocalBuilder? _hp;
    private LocalBuilder? _c1;

    // CF as an int32 0/1 local after BT* (the flags are materialised, so Cpu.Condition would be a call): JC/JNC, SETC...
    // read it directly while the flags are not changed again.
    private LocalBuilder? _cfLocal;

    /// <summary>The forms of this file; UnitExtra.None when the instruction has none of them.</summary>
    private static UnitExtra ClassifyNative(in Instruction ins, ref FastOp op)
    {
        op = new FastOp { Kind = op.Kind, Length = op.Length, Base = FastOp.NoReg, Index = FastOp.NoReg, Src = FastOp.NoReg, Dst = FastOp.NoReg };
        int n = ins.OpCount;
        switch (ins.Mnemonic)
        {
            case Mnemonic.Mul:
            case Mnemonic.Imul:
            case Mnemonic.Div:
            case Mnemonic.Idiv:
                if (n != 1 || !RmOperand(ins, 0, ref op, ref op.Src, out op.Size))
                {
                    return UnitExtra.None;
                }

                op.Aux = (byte)(ins.Mnemonic switch { Mnemonic.Mul => 0, Mnemonic.Imul => 1, Mnemonic.Div => 2, _ => 3 });
                return UnitExtra.MulDiv;
            case Mnemonic.Bsf:
            case Mnemonic.Bsr:
            case Mnemonic.Tzcnt:
            case Mnemonic.Lzcnt:
                if (n != 2 || ins.GetOpKind(0) != OpKind.Register || !FastOpBuilder.Gpr(ins.Op0Register, out op.Dst, out op.Size) ||
                    !RmOperand(ins, 1, ref op, ref op.Src, out byte srcSize) || srcSize != op.Size)
                {
                    return UnitExtra.None;
                }

                op.Aux = (byte)(ins.Mnemonic is Mnemonic.Bsf or Mnemonic.Tzcnt ? 0 : 1);
                return UnitExtra.BitScan;
            case Mnemonic.Bt:
            case Mnemonic.Bts:
            case Mnemonic.Btr:
            case Mnemonic.Btc:
                {
                    if (n != 2)
                    {
                        return UnitExtra.None;
                    }

                    var k1 = ins.GetOpKind(1);
                    if (k1 == OpKind.Immediate8)
                    {
                        op.Imm = ins.Immediate8;
                        op.Aux = BitTestImmediate;
                    }
                    else if (k1 != OpKind.Register || ins.GetOpKind(0) != OpKind.Register || !FastOpBuilder.Gpr(ins.Op1Register, out op.Src, out _))
                    {
                        // A register offset with a memory operand addresses outside the operand: left to the helper.
                        return UnitExtra.None;
                    }

                    if (!RmOperand(ins, 0, ref op, ref op.Dst, out op.Size))
                    {
                        return UnitExtra.None;
                    }

                    op.Aux |= (byte)(ins.Mnemonic switch { Mnemonic.Bt => 0, Mnemonic.Bts => 1, Mnemonic.Btr => 2, _ => 3 });
                    return UnitExtra.BitTest;
                }

            case Mnemonic.Cmpxchg:
            case Mnemonic.Xadd:
                if (n != 2 || ins.GetOpKind(1) != OpKind.Register || !FastOpBuilder.Gpr(ins.Op1Register, out op.Src, out op.Size) ||
                    !RmOperand(ins, 0, ref op, ref op.Dst, out byte dstSize) || dstSize != op.Size)
                {
                    return UnitExtra.None;
                }

                return ins.Mnemonic == Mnemonic.Cmpxchg ? UnitExtra.Cmpxchg : UnitExtra.Xadd;
            case Mnemonic.Shld:
            case Mnemonic.Shrd:
                if (n != 3 || ins.GetOpKind(0) != OpKind.Register || ins.GetOpKind(1) != OpKind.Register || ins.GetOpKind(2) != OpKind.Immediate8 ||
                    !FastOpBuilder.Gpr(ins.Op0Register, out op.Dst, out op.Size) || op.Size < 4 || !FastOpBuilder.Gpr(ins.Op1Register, out op.Src, out _))
                {
                    return UnitExtra.None;
                }

                op.Imm = ins.Immediate8;
                op.Aux = (byte)(ins.Mnemonic == Mnemonic.Shld ? 0 : 1);
                return UnitExtra.ShiftDouble;
            case Mnemonic.Add:
            case Mnemonic.Or:
            case Mnemonic.Adc:
            case Mnemonic.Sbb:
            case Mnemonic.And:
            case Mnemonic.Sub:
            case Mnemonic.Xor:
            case Mnemonic.Cmp:
            case Mnemonic.Test:
            case Mnemonic.Mov:
                return ClassifyHigh8(ins, ref op);
            default:
                return UnitExtra.None;
        }
    }

    /// <summary>8-bit register forms with AH/CH/DH/BH (FastOp leaves them Generic).</summary>
    private static UnitExtra ClassifyHigh8(in Instruction ins, ref FastOp op)
    {
        if (ins.OpCount != 2 || ins.GetOpKind(0) != OpKind.Register || !Gpr8(ins.Op0Register, out op.Dst, out bool highDst))
        {
            return UnitExtra.None;
        }

        byte bits = highDst ? HighDst : (byte)0;
        var k1 = ins.GetOpKind(1);
        if (k1 == OpKind.Immediate8)
        {
            op.Imm = ins.Immediate8;
            bits |= HighImmediate;
        }
        else if (k1 != OpKind.Register || !Gpr8(ins.Op1Register, out op.Src, out bool highSrc))
        {
            return UnitExtra.None;
        }
        else if (highSrc)
        {
            bits |= HighSrc;
        }

        op.SrcSize = bits;
        op.Size = 1;
        op.Aux = ins.Mnemonic switch
        {
            Mnemonic.Test => HighByteTest,
            Mnemonic.Mov => HighByteMov,
            Mnemonic.Add => (byte)AluOp.Add,
            Mnemonic.Or => (byte)AluOp.Or,
            Mnemonic.Adc => (byte)AluOp.Adc,
            Mnemonic.Sbb => (byte)AluOp.Sbb,
            Mnemonic.And => (byte)AluOp.And,
            Mnemonic.Sub => (byte)AluOp.Sub,
            Mnemonic.Xor => (byte)AluOp.Xor,
            _ => (byte)AluOp.Cmp,
        };
        return UnitExtra.AluHigh8;
    }

    /// <summary>An 8-bit general-purpose register: index of the full register, and whether it is bits 8-15 (AH..BH).</summary>
    private static bool Gpr8(Register r, out byte index, out bool high)
    {
        high = r is >= Register.AH and <= Register.BH;
        if (high)
        {
            index = (byte)(r - Register.AH);
            return true;
        }

        return FastOpBuilder.Gpr(r, out index, out byte size) & size == 1;
    }

    /// <summary>An r/m operand: a register (no AH..BH) into <paramref name="reg"/>, or the FastOp memory operand
    /// (SrcSize = 1); its size.</summary>
    private static bool RmOperand(in Instruction ins, int operand, ref FastOp op, ref byte reg, out byte size)
    {
        if (ins.GetOpKind(operand) == OpKind.Register)
        {
            return FastOpBuilder.Gpr(ins.GetOpRegister(operand), out reg, out size);
        }

        size = (byte)ins.MemorySize.GetSize();
        op.SrcSize = 1;
        return ins.GetOpKind(operand) == OpKind.Memory && size is 1 or 2 or 4 or 8 && FastOpBuilder.Memory(ins, ref op);
    }

    private static bool IsMemoryForm(in FastOp op, UnitExtra x) => x != UnitExtra.AluHigh8 && op.SrcSize == 1;

    /// <summary>Whether the form runs a helper call on its slow path (it needs a slot in the unit's helper table).</summary>
    internal static bool NeedsHelperSlot(UnitInstruction ui) =>
        ui.Extra is UnitExtra.Helper or UnitExtra.XchgM || (ui.Extra is UnitExtra.Cmpxchg or UnitExtra.Xadd && ui.Op.SrcSize == 1);

    /// <summary>Registers the forms of this file read (use) and write.</summary>
    private static void ScanNative(UnitInstruction ui, Action<int> use, Action<int> write)
    {
        ref var op = ref ui.Op;
        if (IsMemoryForm(op, ui.Extra))
        {
            use(op.Base);
            use(op.Index);
        }

        switch (ui.Extra)
        {
            case UnitExtra.MulDiv:
                use(op.Src);
                write(0);
                if (op.Size > 1)
                {
                    write(2);
                }

                break;
            case UnitExtra.BitScan:
            case UnitExtra.BitTest:
            case UnitExtra.ShiftDouble:
                use(op.Src);
                write(op.Dst);
                break;
            case UnitExtra.Cmpxchg:
                use(op.Src);
                write(op.Dst);
                write(0);
                break;
            case UnitExtra.Xadd:
                write(op.Src);
                write(op.Dst);
                break;
            case UnitExtra.AluHigh8:
                if ((op.SrcSize & HighImmediate) == 0)
                {
                    use(op.Src);
                }

                write(op.Dst);
                break;
        }
    }

    /// <summary>Register-only forms of this file (no access, no exit) for the flag liveness pass, and whether they
    /// overwrite every arithmetic flag.</summary>
    private static bool NativeRegisterOnly(UnitInstruction ui, out bool writesAllFlags)
    {
        ref var op = ref ui.Op;
        writesAllFlags = false;
        switch (ui.Extra)
        {
            case UnitExtra.MulDiv:
                // MUL/IMUL set all six flags eagerly; DIV/IDIV may leave through #DE.
                writesAllFlags = op.Aux < 2;
                return op.SrcSize == 0 && op.Aux < 2;
            case UnitExtra.ShiftDouble:
                writesAllFlags = ((int)op.Imm & (op.Size == 8 ? 0x3F : 0x1F)) != 0;
                return true;
            case UnitExtra.AluHigh8:
                writesAllFlags = op.Aux is not (HighByteMov or (byte)AluOp.Adc or (byte)AluOp.Sbb);
                return true;
            case UnitExtra.BitScan:
            case UnitExtra.BitTest:
            case UnitExtra.Cmpxchg:
            case UnitExtra.Xadd:
                writesAllFlags = ui.Extra is UnitExtra.Cmpxchg or UnitExtra.Xadd;
                return op.SrcSize == 0;
            default:
                return false;
        }
    }

    /// <summary>Whether a form of this file reads the flags (ADC/SBB with a high-byte register, SETcc m8).</summary>
    private static bool NativeReadsFlags(UnitInstruction ui) =>
        ui.Extra == UnitExtra.SetccM || (ui.Extra == UnitExtra.AluHigh8 && ui.Op.Aux is (byte)AluOp.Adc or (byte)AluOp.Sbb);

    private bool EmitNative(UnitInstruction ui, ref FastOp op)
    {
        switch (ui.Extra)
        {
            case UnitExtra.MulDiv:
                EmitMulDiv(ref op);
                return true;
            case UnitExtra.BitScan:
                EmitBitScan(ref op);
                return true;
            case UnitExtra.BitTest:
                EmitBitTest(ui, ref op);
                return true;
            case UnitExtra.Cmpxchg:
            case UnitExtra.Xadd:
                EmitExchange(ui, ref op);
                return true;
            case UnitExtra.XchgM:
                EmitHostAtomicOrHelper(ui, ref op);
                return true;
            case UnitExtra.ShiftDouble:
                EmitShiftDouble(ref op);
                return true;
            case UnitExtra.AluHigh8:
                EmitAluHigh8(ref op);
                return true;
            default:
                return false;
        }
    }

    /// <summary>Pushes the r/m source (register Src or the memory operand) zero-extended from <paramref name="size"/>.</summary>
    private void EmitRmSource(ref FastOp op, int size)
    {
        if (op.SrcSize == 1)
        {
            EmitReadOperand(ref op, size);
        }
        else
        {
            LdReg(op.Src, size);
        }
    }

    /// <summary>
    /// Materialises the flags (Cpu.GetRflags) and sets bit <paramref name="flag"/> to the int32 0/1 in
    /// <paramref name="value"/>, as the interpreter's PutFlag does (BT*: CF, BSF/BSR: ZF).
    /// </summary>
    private void EmitPutFlag(ulong flag, LocalBuilder value)
    {
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldarg_0);
        Call(s_getRflags);
        LdI8(~flag);
        Op(OpCodes.And);
        Ld(value);
        Op(OpCodes.Conv_U8);
        LdI4(BitOperations.TrailingZeroCount(flag));
        Op(OpCodes.Shl);
        Op(OpCodes.Or);
        _il.Emit(OpCodes.Stfld, Cpu.FieldFlags);

        // GetRflags left the lazy operation at None.
        _fieldOp = (int)FlagOp.None;
        _known = FlagOp.None;
        ForgetOperands();
    }

    private void EmitMulDiv(ref FastOp op)
    {
        int size = op.Size;
        EmitRmSource(ref op, size);
        St(_t1);
        switch (op.Aux)
        {
            case 0:
                EmitMulUnsigned(size);
                break;
            case 1:
                EmitMulSigned(size);
                break;
            default:
                EmitDivide(size, op.Aux == 3);
                break;
        }
    }

    /// <summary>MUL: RDX:RAX (AX for 8 bits) = accumulator * _t1; CF = OF = high half non-zero.</summary>
    private void EmitMulUnsigned(int size)
    {
        if (size == 8)
        {
            EmitWideMultiply(s_bigMulUnsigned);
        }
        else
        {
            // The product of two values of at most 32 bits fits 64.
            LdReg(0, size);
            Ld(_t1);
            Op(OpCodes.Mul);
            St(_t2);
            EmitProductWrites(size);
            Ld(_t2);
            LdI4(size * 8);
            Op(OpCodes.Shr_Un);
            St(_t3);
        }

        if (FlagsDead)
        {
            FlagsSkipped();
            return;
        }

        Ld(_t3);
        LdI8(0);
        Op(OpCodes.Cgt_Un);
        St(_c0);
        SetEagerFlags(_t2, size, _c0, _c0);
    }

    /// <summary>RDX:RAX = RAX * _t1 through <paramref name="bigMul"/> (Math.BigMul, signed or unsigned): low half in
    /// _t2, high half in _t3.</summary>
    private void EmitWideMultiply(MethodInfo bigMul)
    {
        LdReg(0);
        Ld(_t1);
        _il.Emit(OpCodes.Ldloca, _rv);
        LocalWritten(_rv);
        Call(bigMul);
        St(_t3);
        Ld(_rv);
        St(_t2);
        Ld(_t2);
        StReg(0, 8);
        Ld(_t3);
        StReg(2, 8);
    }

    /// <summary>The accumulator writes of an 8/16/32-bit MUL or IMUL with the product in _t2: AX; DX:AX; EDX:EAX.</summary>
    private void EmitProductWrites(int size)
    {
        Ld(_t2);
        StReg(0, size == 1 ? 2 : size);
        if (size > 1)
        {
            Ld(_t2);
            LdI4(size * 8);
            Op(OpCodes.Shr_Un);
            StReg(2, size);
        }
    }

    /// <summary>IMUL r/m: the signed product; CF = OF = it does not fit the operand size.</summary>
    private void EmitMulSigned(int size)
    {
        if (size == 8)
        {
            EmitWideMultiply(Cpu.MethodBigMul);
            if (FlagsDead)
            {
                FlagsSkipped();
                return;
            }

            // hi != lo >> 63 (arithmetic)
            Ld(_t3);
            Ld(_t2);
            LdI4(63);
            Op(OpCodes.Shr);
            Op(OpCodes.Ceq);
            Not();
            St(_c0);
            SetEagerFlags(_t2, 8, _c0, _c0);
            return;
        }

        LdReg(0);
        SignExtend(size);
        Ld(_t1);
        SignExtend(size);
        Op(OpCodes.Mul);
        St(_t2);
        EmitProductWrites(size);
        if (FlagsDead)
        {
            FlagsSkipped();
            return;
        }

        Ld(_t2);
        Ld(_t2);
        SignExtend(size);
        Op(OpCodes.Ceq);
        Not();
        St(_c0);
        SetEagerFlags(_t2, size, _c0, _c0);
    }

    /// <summary>DIV/IDIV by _t1 through ScalarOps; a #DE case leaves the instruction to the interpreter. The flags are
    /// left as they were (as the interpreter does).</summary>
    private void EmitDivide(int size, bool signed)
    {
        _div ??= _il.DeclareLocal(typeof(DivResult));
        LdReg(0);
        if (size == 1)
        {
            LdI8(0);
        }
        else
        {
            LdReg(2);
        }

        Ld(_t1);
        LdI4(size);
        Call(signed ? s_divideSigned : s_divideUnsigned);
        St(_div);
        _il.Emit(OpCodes.Ldloca, _div);
        _il.Emit(OpCodes.Ldfld, s_divOk);
        _il.Emit(OpCodes.Brfalse, FallbackStub());
        _il.Emit(OpCodes.Ldloca, _div);
        _il.Emit(OpCodes.Ldfld, s_divQuotient);
        StReg(0, size == 1 ? 2 : size);
        if (size > 1)
        {
            _il.Emit(OpCodes.Ldloca, _div);
            _il.Emit(OpCodes.Ldfld, s_divRemainder);
            StReg(2, size);
        }
    }

    /// <summary>BSF/BSR (and TZCNT/LZCNT, which the interpreter runs as them): ZF = source is zero; otherwise the
    /// destination gets the index of the lowest/highest set bit (a zero source leaves it unchanged, not even
    /// zero-extended, as in the interpreter).</summary>
    private void EmitBitScan(ref FastOp op)
    {
        int size = op.Size;
        EmitRmSource(ref op, size);
        St(_t1);
        if (FlagsDead)
        {
            FlagsSkipped();
        }
        else
        {
            Ld(_t1);
            LdI8(0);
            Op(OpCodes.Ceq);
            St(_c0);
            EmitPutFlag(Cpu.FlagZf, _c0);
        }

        var skip = _il.DefineLabel();
        Ld(_t1);
        _il.Emit(OpCodes.Brfalse, skip);
        if (op.Aux == 0)
        {
            Ld(_t1);
            Call(s_trailingZeros);
        }
        else
        {
            LdI4(63);
            Ld(_t1);
            Call(s_leadingZeros);
            Op(OpCodes.Sub);
        }

        Op(OpCodes.Conv_U8);
        StReg(op.Dst, size);
        _il.MarkLabel(skip);
    }

    /// <summary>BT/BTS/BTR/BTC with the bit inside the operand: CF = the old bit (flags materialised), the others
    /// write the operand back with the bit set, cleared or flipped.</summary>
    private void EmitBitTest(UnitInstruction ui, ref FastOp op)
    {
        int size = op.Size;
        int bits = size * 8;
        int kind = op.Aux & 3;
        bool memory = op.SrcSize == 1;

        // _t3 = the bit mask.
        if ((op.Aux & BitTestImmediate) != 0)
        {
            LdI8(1UL << (int)(op.Imm & (ulong)(bits - 1)));
        }
        else
        {
            LdI8(1);
            LdReg(op.Src);
            Op(OpCodes.Conv_I4);
            LdI4(bits - 1);
            Op(OpCodes.And);
            Op(OpCodes.Shl);
        }

        St(_t3);
        if (memory)
        {
            EmitLinear(ref op);
            EmitReadLinear(size);
        }
        else
        {
            LdReg(op.Dst, size);
        }

        St(_t0);
        if (kind != 0)
        {
            Ld(_t0);
            Ld(_t3);
            switch (kind)
            {
                case 1:
                    Op(OpCodes.Or);
                    break;
                case 2:
                    Op(OpCodes.Not);
                    Op(OpCodes.And);
                    break;
                default:
                    Op(OpCodes.Xor);
                    break;
            }

            St(_t2);
            if (memory)
            {
                EmitWrite(size, () => Ld(_la), () => Ld(_t2), plain: false);
            }
            else
            {
                Ld(_t2);
                StReg(op.Dst, size);
            }
        }

        if (FlagsDead)
        {
            FlagsSkipped();
        }
        else
        {
            Ld(_t0);
            Ld(_t3);
            Op(OpCodes.And);
            LdI8(0);
            Op(OpCodes.Cgt_Un);
            St(_c0);
            EmitPutFlag(Cpu.FlagCf, _c0);
            _cfLocal = _c0;
        }

        if (memory && kind != 0)
        {
            EmitStoreCheck(ui.NextOffset, false);
        }
    }

    /// <summary>
    /// CMPXCHG and XADD (no LOCK). Registers: in IL. Memory: when the current TLB slot allows a direct write to the
    /// page (a dirty RAM page without decoded code, the whole operand inside it) the read and write go to host memory;
    /// otherwise the interpreter runs the instruction (a helper call), so the write-intent fault it raises, the atomic
    /// access and MMIO stay its own.
    /// </summary>
    private void EmitExchange(UnitInstruction ui, ref FastOp op)
    {
        int size = op.Size;
        bool xadd = ui.Extra == UnitExtra.Xadd;
        bool memory = op.SrcSize == 1;
        if (memory && op.Aux == LockedAccess)
        {
            EmitHostAtomicOrHelper(ui, ref op);
            return;
        }

        Label slow = default, done = default;
        if (memory)
        {
            _hp ??= _il.DeclareLocal(typeof(nint));
            slow = _il.DefineLabel();
            done = _il.DefineLabel();
            EmitLinear(ref op);
            EmitTlbHostAddress(_la, s_fieldWriteTag, size, slow);
            St(_hp!);
            Ld(_hp!);
            EmitLoadIndirect(size);
        }
        else
        {
            LdReg(op.Dst, size);
        }

        // _t1 = the destination's value.
        St(_t1);
        if (xadd)
        {
            LdReg(op.Src, size);
            St(_t0);
            Ld(_t1);
            Ld(_t0);
            Op(OpCodes.Add);
            Mask(size);
            St(_t2);
            if (memory)
            {
                Ld(_hp!);
                Ld(_t2);
                EmitStoreIndirect(size);
            }

            // The source register gets the old value, then the destination the sum (the sum wins when they are one).
            Ld(_t1);
            StReg(op.Src, size);
            if (!memory)
            {
                Ld(_t2);
                StReg(op.Dst, size);
            }

            SetFlagsUnlessDead(FlagOp.Add, _t1, _t0, _t2, size);
        }
        else
        {
            // _t0 = expected (the accumulator), _t3 = desired (read before anything is written).
            LdReg(0, size);
            St(_t0);
            LdReg(op.Src, size);
            St(_t3);
            Ld(_t0);
            Ld(_t1);
            Op(OpCodes.Sub);
            Mask(size);
            St(_t2);
            var fail = _il.DefineLabel();
            var joined = _il.DefineLabel();
            Ld(_t0);
            Ld(_t1);
            _il.Emit(OpCodes.Bne_Un, fail);
            if (memory)
            {
                Ld(_hp!);
                Ld(_t3);
                EmitStoreIndirect(size);
            }
            else
            {
                Ld(_t3);
                StReg(op.Dst, size);
            }

            _il.Emit(OpCodes.Br, joined);
            _il.MarkLabel(fail);

            // Failure: the accumulator gets the value seen (a 32-bit write zero-extends RAX). The processor also writes
            // the old value back to memory, which changes nothing in RAM.
            Ld(_t1);
            StReg(0, size);
            _il.MarkLabel(joined);
            SetFlagsUnlessDead(FlagOp.Sub, _t0, _t1, _t2, size);
        }

        if (memory)
        {
            _il.Emit(OpCodes.Br, done);
            _il.MarkLabel(slow);
            EmitHelper(ui, ref op);
            _il.MarkLabel(done);

            // Two paths meet: what either knew about the flags no longer holds.
            ForgetFlags();
            }
    }

    /// <summary>The lazy flags of <paramref name="op"/> on (a, b) -> r, or nothing when they are dead.</summary>
    private void SetFlagsUnlessDead(FlagOp op, LocalBuilder a, LocalBuilder b, LocalBuilder r, int size)
    {
        if (FlagsDead)
        {
            FlagsSkipped();
        }
        else
        {
            SetFlags(op, Operand.Of(a), Operand.Of(b), Operand.Of(r), size);
        }
    }

    /// <summary>Calls the Interlocked method on the host address in _hp with <paramref name="args"/> (ulong locals,
    /// narrowed to int for a dword) and pushes its result zero-extended.</summary>
    private void EmitHostAtomic(bool wide, MethodInfo dword, MethodInfo qword, params LocalBuilder[] args)
    {
        Ld(_hp!);
        foreach (var a in args)
        {
            Ld(a);
            if (!wide)
            {
                Op(OpCodes.Conv_I4);
            }
        }

        Call(wide ? qword : dword);
        if (!wide)
        {
            Op(OpCodes.Conv_U4);
        }

        Op(OpCodes.Conv_U8);
    }

    /// <summary>
    /// The locked memory forms (LOCK CMPXCHG/XADD, XCHG m): when the operand is naturally aligned (a split-lock operand
    /// is the helper's) and the TLB allows a direct write, one host atomic on its address in _hp; otherwise the
    /// interpreter's atomic path as a helper call.
    /// </summary>
    private void EmitHostAtomicOrHelper(UnitInstruction ui, ref FastOp op)
    {
        int size = op.Size;
        _hp ??= _il.DeclareLocal(typeof(nint));
        var slow = _il.DefineLabel();
        var done = _il.DefineLabel();
        EmitLinear(ref op);
        Ld(_la);
        LdI8((ulong)(size - 1));
        Op(OpCodes.And);
        _il.Emit(OpCodes.Brtrue, slow);
        EmitTlbHostAddress(_la, s_fieldWriteTag, size, slow);
        St(_hp!);
        if (ui.Extra == UnitExtra.XchgM)
        {
            LdReg(op.Src, size);
            St(_t0);
            EmitHostAtomic(size == 8, s_xchgInt32, s_xchgInt64, _t0);
            StReg(op.Src, size);
        }
        else
        {
            EmitLockedExchange(ui.Extra == UnitExtra.Xadd, size, ref op);
        }

        _il.Emit(OpCodes.Br, done);
        _il.MarkLabel(slow);
        EmitHelper(ui, ref op);
        _il.MarkLabel(done);

        // Two paths meet: what either knew about the flags no longer holds.
        ForgetFlags();
    }

    /// <summary>
    /// LOCK CMPXCHG/XADD with the operand's host address in _hp (4 or 8 bytes, aligned): one Interlocked operation on
    /// guest RAM, so other vCPUs see it atomic; registers and flags as the unlocked forms set them.
    /// </summary>
    private void EmitLockedExchange(bool xadd, int size, ref FastOp op)
    {
        bool wide = size == 8;
        if (xadd)
        {
            // _t0 = addend; _t2 = the new value (Interlocked.Add returns it); _t1 = the old one.
            LdReg(op.Src, size);
            St(_t0);
            EmitHostAtomic(wide, s_addInt32, s_addInt64, _t0);
            St(_t2);
            Ld(_t2);
            Ld(_t0);
            Op(OpCodes.Sub);
            Mask(size);
            St(_t1);
            Ld(_t1);
            StReg(op.Src, size);
            SetFlagsUnlessDead(FlagOp.Add, _t1, _t0, _t2, size);

            return;
        }

        // _t0 = expected (the accumulator), _t3 = desired; _t1 = what memory held (Interlocked.CompareExchange).
        LdReg(0, size);
        St(_t0);
        LdReg(op.Src, size);
        St(_t3);
        EmitHostAtomic(wide, s_casInt32, s_casInt64, _t3, _t0);
        St(_t1);
        Ld(_t0);
        Ld(_t1);
        Op(OpCodes.Sub);
        Mask(size);
        St(_t2);

        // Failure: the accumulator gets the value seen (a 32-bit write zero-extends RAX).
        var joined = _il.DefineLabel();
        Ld(_t0);
        Ld(_t1);
        _il.Emit(OpCodes.Beq, joined);
        Ld(_t1);
        StReg(0, size);
        _il.MarkLabel(joined);
        SetFlagsUnlessDead(FlagOp.Sub, _t0, _t1, _t2, size);
    }

    /// <summary>Pushes the <paramref name="size"/>-byte value at the host address on the stack, zero-extended.</summary>
    private void EmitLoadIndirect(int size)
    {
        if (size > 1)
        {
            _il.Emit(OpCodes.Unaligned, (byte)1);
        }

        switch (size)
        {
            case 1:
                Op(OpCodes.Ldind_U1);
                Op(OpCodes.Conv_U8);
                break;
            case 2:
                Op(OpCodes.Ldind_U2);
                Op(OpCodes.Conv_U8);
                break;
            case 4:
                Op(OpCodes.Ldind_U4);
                Op(OpCodes.Conv_U8);
                break;
            default:
                Op(OpCodes.Ldind_I8);
                break;
        }
    }

    /// <summary>Stores the low <paramref name="size"/> bytes of the ulong on the stack at the host address under it.</summary>
    private void EmitStoreIndirect(int size)
    {
        switch (size)
        {
            case 1:
                Op(OpCodes.Conv_U1);
                Op(OpCodes.Stind_I1);
                return;
            case 2:
                Op(OpCodes.Conv_U2);
                _il.Emit(OpCodes.Unaligned, (byte)1);
                Op(OpCodes.Stind_I2);
                return;
            case 4:
                Op(OpCodes.Conv_U4);
                _il.Emit(OpCodes.Unaligned, (byte)1);
                Op(OpCodes.Stind_I4);
                return;
            default:
                _il.Emit(OpCodes.Unaligned, (byte)1);
                Op(OpCodes.Stind_I8);
                return;
        }
    }

    /// <summary>SHLD/SHRD r32/r64, r, imm8: the destination shifted with bits of the source filling in; flags eager
    /// (CF = last bit out, OF = sign changed); a zero count changes nothing but zero-extends a 32-bit destination.</summary>
    private void EmitShiftDouble(ref FastOp op)
    {
        int size = op.Size;
        int bits = size * 8;
        int count = MaskedCount(op);
        if (EmitZeroCount(op, count))
        {
            return;
        }

        bool left = op.Aux == 0;
        LdReg(op.Dst, size);
        St(_t0);
        Ld(_t0);
        LdI4(count);
        Op(left ? OpCodes.Shl : OpCodes.Shr_Un);
        LdReg(op.Src, size);
        LdI4(bits - count);
        Op(left ? OpCodes.Shr_Un : OpCodes.Shl);
        Op(OpCodes.Or);
        Mask(size);
        St(_t2);
        Ld(_t2);
        StReg(op.Dst, size);
        if (FlagsDead)
        {
            FlagsSkipped();
            return;
        }

        _c1 ??= _il.DeclareLocal(typeof(int));
        Ld(_t0);
        LdI4(left ? bits - count : count - 1);
        Op(OpCodes.Shr_Un);
        LdI8(1);
        Op(OpCodes.And);
        Op(OpCodes.Conv_I4);
        St(_c0);
        LdMsb(_t2, Cpu.SignBit(size));
        LdMsb(_t0, Cpu.SignBit(size));
        Op(OpCodes.Xor);
        St(_c1);
        SetEagerFlags(_t2, size, _c0, _c1);
    }

    /// <summary>Pushes an 8-bit register (bits 8-15 of the full register when <paramref name="high"/>).</summary>
    private void LdReg8(int r, bool high)
    {
        LdReg(r);
        if (high)
        {
            LdI4(8);
            Op(OpCodes.Shr_Un);
        }

        Mask(1);
    }

    /// <summary>Writes the low byte of the ulong on the stack to an 8-bit register (AH..BH: bits 8-15).</summary>
    private void StReg8(int r, bool high)
    {
        if (!high)
        {
            StReg(r, 1);
            return;
        }

        Mask(1);
        LdI4(8);
        Op(OpCodes.Shl);
        LdReg(r);
        LdI8(~0xFF00UL);
        Op(OpCodes.And);
        Op(OpCodes.Or);
        St(_reg[r]!);
    }

    private void EmitAluHigh8(ref FastOp op)
    {
        bool highDst = (op.SrcSize & HighDst) != 0;
        var b = Operand.Constant(op.Imm & 0xFF);
        if ((op.SrcSize & HighImmediate) == 0)
        {
            LdReg8(op.Src, (op.SrcSize & HighSrc) != 0);
            St(_t1);
            b = Operand.Of(_t1);
        }

        if (op.Aux == HighByteMov)
        {
            LdOperand(b);
            StReg8(op.Dst, highDst);
            return;
        }

        LdReg8(op.Dst, highDst);
        St(_t0);
        if (op.Aux == HighByteTest)
        {
            if (FlagsDead)
            {
                FlagsSkipped();
                return;
            }

            Ld(_t0);
            LdOperand(b);
            Op(OpCodes.And);
            St(_t2);
            SetFlags(FlagOp.Logic, null, null, _t2, 1);
            return;
        }

        var aop = (AluOp)op.Aux;
        EmitCarryIn(aop);
        EmitAluCompute(aop, 1, () => Ld(_t0), () => LdOperand(b));
        if (aop != AluOp.Cmp)
        {
            Ld(_t2);
            StReg8(op.Dst, highDst);
        }

        if (FlagsDead)
        {
            FlagsSkipped();
            return;
        }

        SetFlags(FlagOpOf(aop), Operand.Of(_t0), b, Operand.Of(_t2), 1, aop is AluOp.Adc or AluOp.Sbb ? _c0 : null);
    }
}
