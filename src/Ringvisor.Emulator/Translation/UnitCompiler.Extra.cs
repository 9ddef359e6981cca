// The translator's forms beyond FastKind (UnitExtra): rotates by an immediate, NOT/NEG, shifts by CL, XCHG r,r,
// CWDE/CDQE/CDQ/CQO and PUSH imm, mirroring Instructions/InterpShift.cs, InterpAlu.cs, InterpData.cs and
// InterpStack.cs (the reference).
using System.Reflection.Emit;
using Iced.Intel;
using Ringvisor.Emulator.Decoding;
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator.Translation;

internal sealed partial class UnitCompiler
{
    private InstructionInfoFactory? _instructionInfo;

    private static readonly System.Reflection.MethodInfo s_reverse32 =
        typeof(System.Buffers.Binary.BinaryPrimitives).GetMethod(nameof(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness), [typeof(uint)])!;

    private static readonly System.Reflection.MethodInfo s_reverse64 =
        typeof(System.Buffers.Binary.BinaryPrimitives).GetMethod(nameof(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness), [typeof(ulong)])!;

    private static UnitExtra ClassifyExtra(in Instruction ins, ref FastOp op)
    {
        var sseOp = op;
        if (ClassifySse(ins, ref sseOp))
        {
            op = sseOp;
            return UnitExtra.Sse;
        }

        if (ins.HasLockPrefix && !ins.HasRepPrefix && !ins.HasRepnePrefix && ins.Mnemonic is Mnemonic.Cmpxchg or Mnemonic.Xadd)
        {
            // LOCK CMPXCHG/XADD on a dword or qword in memory (the kernel's atomics and spinlocks): one host atomic
            // when the TLB allows a direct write and the operand is aligned, else the helper (UnitCompiler.Native.cs).
            var lockedOp = op;
            var locked = ClassifyNative(ins, ref lockedOp);
            if (locked is UnitExtra.Cmpxchg or UnitExtra.Xadd && lockedOp.SrcSize == 1 && lockedOp.Size is 4 or 8)
            {
                lockedOp.Aux = LockedAccess;
                op = lockedOp;
                return locked;
            }
        }

        if (ins.HasLockPrefix || ins.HasRepPrefix || ins.HasRepnePrefix)
        {
            // LOCKed read-modify-writes and REP string instructions run in the interpreter from inside the unit (its
            // atomic paths and its bulk copies; a REP stopped part way exits back to itself). Until session 4 this
            // returned None before the whitelist was consulted: `rep movsb`/`rep stosq`, locked CMPXCHG/XADD ended
            // their units (~0.8 M unit exits per benchmark boot).
            return IsHelperSafe(ins) ? UnitExtra.Helper : UnitExtra.None;
        }

        var nativeOp = op;
        var native = ClassifyNative(ins, ref nativeOp);
        if (native != UnitExtra.None)
        {
            op = nativeOp;
            return native;
        }

        int n = ins.OpCount;
        var k0 = n > 0 ? ins.GetOpKind(0) : OpKind.Register;
        var k1 = n > 1 ? ins.GetOpKind(1) : OpKind.Register;
        if (ins.Mnemonic is >= Mnemonic.Seta and <= Mnemonic.Sets && n == 1 && k0 == OpKind.Memory && FastOpBuilder.Memory(ins, ref op))
        {
            op.Size = 1;
            op.Aux = (byte)((int)ins.ConditionCode - 1);
            return UnitExtra.SetccM;
        }

        switch (ins.Mnemonic)
        {
            case Mnemonic.Rol:
            case Mnemonic.Ror:
                if (n != 2 || k0 != OpKind.Register || k1 != OpKind.Immediate8 || !FastOpBuilder.Gpr(ins.Op0Register, out op.Dst, out op.Size))
                {
                    return UnitExtra.None;
                }

                op.Imm = ins.Immediate8;
                op.Aux = (byte)(ins.Mnemonic == Mnemonic.Rol ? 0 : 1);
                return UnitExtra.RotateRI;
            case Mnemonic.Not:
            case Mnemonic.Neg:
                if (n != 1 || k0 != OpKind.Register || !FastOpBuilder.Gpr(ins.Op0Register, out op.Dst, out op.Size))
                {
                    return UnitExtra.None;
                }

                return ins.Mnemonic == Mnemonic.Not ? UnitExtra.NotR : UnitExtra.NegR;
            case Mnemonic.Shl:
            case Mnemonic.Sal:
            case Mnemonic.Shr:
            case Mnemonic.Sar:
                if (n != 2 || k0 != OpKind.Register || k1 != OpKind.Register || ins.Op1Register != Register.CL ||
                    !FastOpBuilder.Gpr(ins.Op0Register, out op.Dst, out op.Size))
                {
                    return UnitExtra.None;
                }

                op.Aux = (byte)(ins.Mnemonic is Mnemonic.Shl or Mnemonic.Sal ? 0 : ins.Mnemonic == Mnemonic.Shr ? 1 : 2);
                return UnitExtra.ShiftRCl;
            case Mnemonic.Xchg:
                if (n != 2 || k0 != OpKind.Register || k1 != OpKind.Register ||
                    !FastOpBuilder.Gpr(ins.Op0Register, out op.Dst, out op.Size) || !FastOpBuilder.Gpr(ins.Op1Register, out op.Src, out _))
                {
                    // The memory form (implicitly locked): a host atomic for dwords and qwords (UnitCompiler.Native.cs),
                    // else the interpreter's atomic exchange as a helper call.
                    if (n == 2 && (k0, k1) is (OpKind.Memory, OpKind.Register) or (OpKind.Register, OpKind.Memory) &&
                        FastOpBuilder.Gpr(ins.GetOpRegister(k0 == OpKind.Register ? 0 : 1), out op.Src, out op.Size) &&
                        op.Size is 4 or 8 && ins.MemorySize.GetSize() == op.Size && FastOpBuilder.Memory(ins, ref op))
                    {
                        op.SrcSize = 1;
                        return UnitExtra.XchgM;
                    }

                    return IsHelperSafe(ins) ? UnitExtra.Helper : UnitExtra.None;
                }

                return UnitExtra.XchgRR;
            case Mnemonic.Inc:
            case Mnemonic.Dec:
                if (n != 1 || k0 != OpKind.Memory || !FastOpBuilder.Memory(ins, ref op) || ins.MemorySize.GetSize() is not (1 or 2 or 4 or 8))
                {
                    return IsHelperSafe(ins) ? UnitExtra.Helper : UnitExtra.None;
                }

                op.Size = (byte)ins.MemorySize.GetSize();
                op.Aux = (byte)(ins.Mnemonic == Mnemonic.Inc ? 0 : 1);
                return UnitExtra.IncDecM;
            case Mnemonic.Bswap:
                if (n != 1 || k0 != OpKind.Register || !FastOpBuilder.Gpr(ins.Op0Register, out op.Dst, out op.Size) || op.Size < 4)
                {
                    // BSWAP r16 is undefined (SDM): left to the interpreter's definition.
                    return UnitExtra.None;
                }

                return UnitExtra.Bswap;
            case Mnemonic.Cwde:
                op.Aux = 0;
                return UnitExtra.SignExtendAcc;
            case Mnemonic.Cdqe:
                op.Aux = 1;
                return UnitExtra.SignExtendAcc;
            case Mnemonic.Cdq:
                op.Aux = 2;
                return UnitExtra.SignExtendAcc;
            case Mnemonic.Cqo:
                op.Aux = 3;
                return UnitExtra.SignExtendAcc;
            case Mnemonic.Push:
                if (ins.Code is not (Code.Pushq_imm32 or Code.Pushq_imm8))
                {
                    return UnitExtra.None;
                }

                op.Imm = ins.GetImmediate(0);
                return UnitExtra.PushI;
            case Mnemonic.Jmp:
            case Mnemonic.Call:
                {
                    bool call = ins.Mnemonic == Mnemonic.Call;
                    if (ins.Code != (call ? Code.Call_rm64 : Code.Jmp_rm64))
                    {
                        return UnitExtra.None;
                    }

                    if (k0 == OpKind.Register)
                    {
                        if (!FastOpBuilder.Gpr(ins.Op0Register, out op.Src, out byte size) || size != 8)
                        {
                            return UnitExtra.None;
                        }

                        op.Aux = 0;
                    }
                    else if (k0 == OpKind.Memory && FastOpBuilder.Memory(ins, ref op))
                    {
                        op.Aux = 1;
                    }
                    else
                    {
                        return UnitExtra.None;
                    }

                    op.Size = 8;
                    return call ? UnitExtra.IndirectCall : UnitExtra.IndirectJmp;
                }

            default:
                return IsHelperSafe(ins) ? UnitExtra.Helper : UnitExtra.None;
        }
    }

    // Instructions the interpreter may run from inside a unit: no control transfer, no mode, privilege or shadow
    // change, and no interrupt-flag change that could let an interrupt in (CLI may run here: nothing becomes
    // deliverable; STI and POPF end the unit). A REP string instruction that stops part way (16K iterations per step) sets the next RIP back
    // to itself; the helper then exits there and it runs again.
    private static readonly HashSet<Mnemonic> s_helperMnemonics =
    [
        Mnemonic.Add, Mnemonic.Or, Mnemonic.Adc, Mnemonic.Sbb, Mnemonic.And, Mnemonic.Sub, Mnemonic.Xor, Mnemonic.Cmp,
        Mnemonic.Test, Mnemonic.Inc, Mnemonic.Dec, Mnemonic.Neg, Mnemonic.Not, Mnemonic.Mov, Mnemonic.Movzx,
        Mnemonic.Movsx, Mnemonic.Movsxd, Mnemonic.Xchg, Mnemonic.Cmpxchg, Mnemonic.Cmpxchg16b, Mnemonic.Xadd, Mnemonic.Bt, Mnemonic.Bts,
        Mnemonic.Btr, Mnemonic.Btc, Mnemonic.Bsf, Mnemonic.Bsr, Mnemonic.Bswap, Mnemonic.Mul, Mnemonic.Imul,
        Mnemonic.Div, Mnemonic.Idiv, Mnemonic.Shl, Mnemonic.Sal, Mnemonic.Shr, Mnemonic.Sar, Mnemonic.Rol, Mnemonic.Ror,
        Mnemonic.Rcl, Mnemonic.Rcr, Mnemonic.Shld, Mnemonic.Shrd, Mnemonic.Lea, Mnemonic.Cbw, Mnemonic.Cwd,
        Mnemonic.Clc, Mnemonic.Stc, Mnemonic.Cmc, Mnemonic.Cld, Mnemonic.Std, Mnemonic.Lahf, Mnemonic.Sahf,
        Mnemonic.Push, Mnemonic.Pop, Mnemonic.Nop,
        Mnemonic.Movsb, Mnemonic.Movsw, Mnemonic.Movsd, Mnemonic.Movsq, Mnemonic.Stosb, Mnemonic.Stosw, Mnemonic.Stosd,
        Mnemonic.Stosq, Mnemonic.Lodsb, Mnemonic.Lodsw, Mnemonic.Lodsd, Mnemonic.Lodsq, Mnemonic.Scasb, Mnemonic.Scasw,
        Mnemonic.Scasd, Mnemonic.Scasq, Mnemonic.Cmpsb, Mnemonic.Cmpsw, Mnemonic.Cmpsd, Mnemonic.Cmpsq,
        Mnemonic.Movaps, Mnemonic.Movups, Mnemonic.Movapd, Mnemonic.Movupd, Mnemonic.Movdqa, Mnemonic.Movdqu,
        Mnemonic.Movq, Mnemonic.Movd, Mnemonic.Movss, Mnemonic.Movhps, Mnemonic.Movlps, Mnemonic.Movhlps,
        Mnemonic.Movlhps, Mnemonic.Pxor, Mnemonic.Por, Mnemonic.Pand, Mnemonic.Pandn, Mnemonic.Xorps, Mnemonic.Xorpd,
        Mnemonic.Andps, Mnemonic.Orps, Mnemonic.Pcmpeqb, Mnemonic.Pcmpeqw, Mnemonic.Pcmpeqd, Mnemonic.Pmovmskb,
        Mnemonic.Pshufd, Mnemonic.Punpcklbw, Mnemonic.Punpcklqdq, Mnemonic.Paddq, Mnemonic.Paddd, Mnemonic.Psubq,
        Mnemonic.Pminub, Mnemonic.Psrldq, Mnemonic.Pslldq,

        // Session 4, from the instructions at which units most often ended on the benchmark boot.
        Mnemonic.Psrlw, Mnemonic.Psrld, Mnemonic.Psrlq, Mnemonic.Psllw, Mnemonic.Pslld, Mnemonic.Psllq, Mnemonic.Psraw,
        Mnemonic.Psrad, Mnemonic.Pshufb, Mnemonic.Punpcklwd, Mnemonic.Punpckldq, Mnemonic.Punpckhbw, Mnemonic.Punpckhwd,
        Mnemonic.Punpckhdq, Mnemonic.Punpckhqdq, Mnemonic.Pushfq, Mnemonic.Seto, Mnemonic.Setno, Mnemonic.Setb,
        Mnemonic.Setae, Mnemonic.Sete, Mnemonic.Setne, Mnemonic.Setbe, Mnemonic.Seta, Mnemonic.Sets, Mnemonic.Setns,
        Mnemonic.Setp, Mnemonic.Setnp, Mnemonic.Setl, Mnemonic.Setge, Mnemonic.Setle, Mnemonic.Setg,
        Mnemonic.Cli, Mnemonic.Mfence, Mnemonic.Rdtsc, Mnemonic.Rdtscp, Mnemonic.Paddb, Mnemonic.Paddw, Mnemonic.Psubb,
        Mnemonic.Psubw, Mnemonic.Psubd, Mnemonic.Paddusb, Mnemonic.Paddusw, Mnemonic.Psubusb, Mnemonic.Psubusw,
        Mnemonic.Pcmpgtb, Mnemonic.Pcmpgtw, Mnemonic.Pcmpgtd, Mnemonic.Pmaxub, Mnemonic.Pminsw, Mnemonic.Pmaxsw,
        Mnemonic.Pavgb, Mnemonic.Pmullw, Mnemonic.Pmuludq, Mnemonic.Packuswb, Mnemonic.Packsswb, Mnemonic.Packssdw,
        Mnemonic.Pshuflw, Mnemonic.Pshufhw, Mnemonic.Leave,
    ];

    private static bool IsHelperSafe(in Instruction ins)
    {
        if (ins.FlowControl != Iced.Intel.FlowControl.Next || !s_helperMnemonics.Contains(ins.Mnemonic))
        {
            return false;
        }

        // Only general-purpose and XMM registers: no segment (MOV/POP SS, a shadow), control or debug registers;
        // except that MOV may read a segment register (the kernel's `mov eax, cs` on its entry paths).
        for (int i = 0; i < ins.OpCount; i++)
        {
            if (ins.GetOpKind(i) == OpKind.Register)
            {
                var r = ins.GetOpRegister(i);
                bool segmentRead = i == 1 && r.IsSegmentRegister() && ins.Mnemonic == Mnemonic.Mov;
                if (!r.IsGPR() && !r.IsXMM() && !segmentRead)
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>Whether the extra form transfers control unconditionally (no fall-through).</summary>
    public static bool ExtraEndsPath(UnitExtra x) => x is UnitExtra.IndirectJmp or UnitExtra.IndirectCall;

    private static bool ExtraWritesFlags(UnitExtra x) => x is UnitExtra.RotateRI or UnitExtra.NegR or UnitExtra.ShiftRCl;

    /// <summary>Registers an extra form reads (use) and writes.</summary>
    private void ScanExtra(UnitInstruction ui, Action<int> use, Action<int> write)
    {
        ref var op = ref ui.Op;
        switch (ui.Extra)
        {
            case UnitExtra.ShiftRCl:
                use(1);
                write(op.Dst);
                break;
            case UnitExtra.XchgRR:
                write(op.Dst);
                write(op.Src);
                break;
            case UnitExtra.SignExtendAcc:
                write(0);
                write(2);
                break;
            case UnitExtra.PushI:
                write(4);
                break;
            case UnitExtra.Helper:
                // Works on the Cpu's registers: the locals are spilled and reloaded around it.
                break;
            case UnitExtra.Sse:
                ScanSse(ref op, use, write);
                break;
            case UnitExtra.IncDecM:
            case UnitExtra.SetccM:
            case UnitExtra.XchgM:
                use(op.Base);
                use(op.Index);
                if (ui.Extra == UnitExtra.XchgM)
                {
                    use(op.Src);
                    write(op.Src);
                }

                break;
            case UnitExtra.MulDiv:
            case UnitExtra.BitScan:
            case UnitExtra.BitTest:
            case UnitExtra.Cmpxchg:
            case UnitExtra.Xadd:
            case UnitExtra.ShiftDouble:
            case UnitExtra.AluHigh8:
                ScanNative(ui, use, write);
                break;
            case UnitExtra.IndirectJmp:
            case UnitExtra.IndirectCall:
                if (op.Aux == 0)
                {
                    use(op.Src);
                }
                else
                {
                    use(op.Base);
                    use(op.Index);
                }

                if (ui.Extra == UnitExtra.IndirectCall)
                {
                    write(4);
                }

                break;
            default:
                write(op.Dst);
                break;
        }
    }

    private bool EmitExtra(UnitInstruction ui)
    {
        ref var op = ref ui.Op;
        int size = op.Size;
        switch (ui.Extra)
        {
            case UnitExtra.RotateRI:
                EmitRotate(ref op);
                return true;
            case UnitExtra.NotR:
                LdReg(op.Dst, size);
                LdI8(ulong.MaxValue);
                Op(OpCodes.Xor);
                StReg(op.Dst, size);
                return true;
            case UnitExtra.NegR:
                if (FlagsDead)
                {
                    LdI8(0);
                    LdReg(op.Dst, size);
                    Op(OpCodes.Sub);
                    StReg(op.Dst, size);
                    FlagsSkipped();
                    return true;
                }

                LdReg(op.Dst, size);
                St(_t0);
                LdI8(0);
                Ld(_t0);
                Op(OpCodes.Sub);
                Mask(size);
                St(_t2);
                Ld(_t2);
                StReg(op.Dst, size);
                SetFlags(FlagOp.Neg, null, _t0, _t2, size);
                return true;
            case UnitExtra.ShiftRCl:
                EmitShiftCl(ref op);
                return true;
            case UnitExtra.XchgRR:
                LdReg(op.Dst, size);
                St(_t0);
                LdReg(op.Src, size);
                St(_t1);
                Ld(_t1);
                StReg(op.Dst, size);
                Ld(_t0);
                StReg(op.Src, size);
                return true;
            case UnitExtra.SignExtendAcc:
                EmitSignExtendAcc(op.Aux);
                return true;
            case UnitExtra.PushI:
                {
                    ulong imm = op.Imm;
                    EmitPushValue(ui, () => LdI8(imm));
                }

                return true;
            case UnitExtra.IndirectJmp:
            case UnitExtra.IndirectCall:
                EmitIndirect(ui, ref op);
                return false;
            case UnitExtra.Helper:
                EmitHelper(ui, ref op);
                return true;
            case UnitExtra.Sse:
                EmitSse(ui, ref op);
                return true;
            case UnitExtra.SetccM:
                // The condition first (it may call into the Cpu), then a byte store like any other.
                EmitCondition(op.Aux);
                Op(OpCodes.Conv_U8);
                St(_t2);
                EmitLinear(ref op);
                EmitWrite(1, () => Ld(_la), () => Ld(_t2), plain: false);
                EmitStoreCheck(ui.NextOffset, false);
                return true;
            case UnitExtra.IncDecM:
                EmitIncDecMemory(ui, ref op);
                return true;
            case UnitExtra.Bswap:
                LdReg(op.Dst, size);
                if (size == 4)
                {
                    Op(OpCodes.Conv_U4);
                    Call(s_reverse32);
                    Op(OpCodes.Conv_U8);
                }
                else
                {
                    Call(s_reverse64);
                }

                StReg(op.Dst, size);
                return true;
            default:
                if (EmitNative(ui, ref op))
                {
                    return true;
                }

                throw new InvalidOperationException($"translator: no emitter for {ui.Extra}");
        }
    }

    /// <summary>
    /// INC/DEC m (no LOCK): read, add or subtract 1, write, then the flags (CF kept: the carry-in is the current CF,
    /// read before anything changes), committed only after the store succeeded so a fault leaves the old flags.
    /// </summary>
    private void EmitIncDecMemory(UnitInstruction ui, ref FastOp op)
    {
        int size = op.Size;
        bool inc = op.Aux == 0;
        bool dead = FlagsDead;
        EmitLinear(ref op);
        if (!dead)
        {
            EmitCarry();
            St(_c0);
        }

        EmitReadLinear(size);
        St(_t0);
        Ld(_t0);
        LdI8(1);
        Op(inc ? OpCodes.Add : OpCodes.Sub);
        Mask(size);
        St(_t2);
        EmitWrite(size, () => Ld(_la), () => Ld(_t2), plain: false);
        if (dead)
        {
            FlagsSkipped();
        }
        else
        {
            SetFlagOperands(Operand.Of(_t0, size), Operand.Constant(1));
            SetFlagResult(inc ? FlagOp.Inc : FlagOp.Dec, Operand.Of(_t2), size, _c0);
        }

        EmitStoreCheck(ui.NextOffset, false);
    }

    /// <summary>
    /// Runs the instruction in the interpreter (Cpu.TranslatedExecute): the registers the unit writes are stored into
    /// the Cpu before (the lazy flags are in its fields already) and the ones the instruction may write loaded back
    /// after, whatever happened. A fault exits at the instruction; a changed next RIP (a REP string instruction that stopped part way
    /// runs again), attention or a rewrite of this page exits after it.
    /// </summary>
    private void EmitHelper(UnitInstruction ui, ref FastOp op)
    {
        // Registers the unit never writes are in Cpu.Gpr already (a helper's writes are reloaded below).
        for (int r = 15; r >= 0; r--)
        {
            if (_regWritten[r])
            {
                GprFieldAddress(r);
                LdReg(r);
                Op(OpCodes.Stind_I8);
            }
        }

        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldarg_3);
        LdI4((int)op.Imm);
        _il.Emit(OpCodes.Ldelema, typeof(Instruction));
        _il.Emit(OpCodes.Ldarg_1);
        LdI8((ulong)ui.Offset);
        Op(OpCodes.Add);
        LdCurrentPage();
        Call(Cpu.MethodTranslatedExecute);
        St(_status);

        // Whatever the interpreter left is the state, also after a fault (a REP string instruction reports its
        // progress in RCX/RSI/RDI when it faults part way). Only the registers the instruction may write are
        // reloaded (Iced's instruction info: written, conditionally written, read-written; RSP for stack forms):
        // the others' locals are still current.
        var writes = HelperWrites(ui.Instruction);
        for (int r = 15; r >= 0; r--)
        {
            if (_regUsed[r] && writes[r])
            {
                LdGprField(r);
                St(_reg[r]!);
            }
        }

        ForgetFlags();
        var fault = FaultStub();
        Ld(_status);
        LdI4(1);
        _il.Emit(OpCodes.Beq, fault);
        var go = _il.DefineLabel();
        Ld(_status);
        _il.Emit(OpCodes.Brfalse, go);
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, Cpu.FieldNextRip);
        St(_exitRip);
        _il.Emit(OpCodes.Br, Stub(TranslationExit.Store, 0, true, AdjustAfter));
        _il.MarkLabel(go);
    }

    /// <summary>The general-purpose registers (by index) that <paramref name="ins"/> may write.</summary>
    private bool[] HelperWrites(in Instruction ins)
    {
        var writes = new bool[16];
        var info = (_instructionInfo ??= new InstructionInfoFactory()).GetInfo(ins);
        foreach (var u in info.GetUsedRegisters())
        {
            if (u.Register.IsGPR() && u.Access is OpAccess.Write or OpAccess.CondWrite or OpAccess.ReadWrite or OpAccess.ReadCondWrite)
            {
                writes[u.Register.GetFullRegister() - Register.RAX] = true;
            }
        }

        if (ins.StackPointerIncrement != 0)
        {
            writes[4] = true;
        }

        return writes;
    }

    /// <summary>JMP/CALL through a register or memory (InterpFlow.ExecJmp/ExecCall): read the target, leave a
    /// non-canonical one to the interpreter (#GP), push the return address for CALL, exit to the target.</summary>
    private void EmitIndirect(UnitInstruction ui, ref FastOp op)
    {
        if (op.Aux == 0)
        {
            LdReg(op.Src);
            St(_t1);
        }
        else
        {
            EmitReadOperand(ref op, 8);
            St(_t1);
        }

        EmitBranchUnlessCanonical(_t1, FallbackStub());
        if (ui.Extra == UnitExtra.IndirectCall)
        {
            EmitPushValueUnchecked(() => EmitLoadReturnAddress(ui));
        }

        // The exit below also covers the store check (self-modifying code, attention) after CALL's push.
        Ld(_t1);
        St(_exitRip);
        _il.Emit(OpCodes.Br, Stub(TranslationExit.Indirect, 0, true, AdjustAfter));
    }

    private void EmitRotate(ref FastOp op)
    {
        int size = op.Size;
        int bits = size * 8;
        int count = MaskedCount(op);
        if (EmitZeroCount(op, count))
        {
            return;
        }

        int c = count % bits;
        LdReg(op.Dst, size);
        St(_t0);
        Ld(_t0);
        if (c != 0)
        {
            bool left = op.Aux == 0;
            LdI4(left ? c : bits - c);
            Op(OpCodes.Shl);
            Ld(_t0);
            LdI4(left ? bits - c : c);
            Op(OpCodes.Shr_Un);
            Op(OpCodes.Or);
            Mask(size);
        }

        St(_t2);
        Ld(_t2);
        StReg(op.Dst, size);
        if (FlagsDead)
        {
            FlagsSkipped();
            return;
        }

        ulong sign = Cpu.SignBit(size);
        if (op.Aux == 0)
        {
            // ROL: CF = bit 0 of the result, OF = MSB ^ CF.
            Ld(_t2);
            LdI8(1);
            Op(OpCodes.And);
            Op(OpCodes.Conv_I4);
            St(_c0);
            LdMsb(_t2, sign);
            Ld(_c0);
            Op(OpCodes.Xor);
        }
        else
        {
            // ROR: CF = MSB of the result, OF = MSB ^ (MSB - 1).
            LdMsb(_t2, sign);
            St(_c0);
            Ld(_c0);
            LdMsb(_t2, sign >> 1);
            Op(OpCodes.Xor);
        }

        St(_val);
        if (RotateFlagsDeferred)
        {
            // Only a fault of a load before the next full flag writer can see these flags: keep CF/OF for its exit.
            Ld(_c0);
            St(_deferredCf ??= _il.DeclareLocal(typeof(int)));
            Ld(_val);
            Op(OpCodes.Conv_I4);
            St(_deferredOf ??= _il.DeclareLocal(typeof(int)));
            LdI4(1);
            St(_deferredPending ??= _il.DeclareLocal(typeof(int)));
            _deferredFix = _il.DefineLabel();
            _deferredFixes.Add(_deferredFix.Value);
            FlagsSkipped();
            return;
        }

        _il.Emit(OpCodes.Ldarg_0);
        Ld(_c0);
        Ld(_val);
        Op(OpCodes.Conv_I4);
        Call(Cpu.MethodPatchCfOf);

        // PatchCfOf materialised the flags: the Cpu's operation is None now.
        _known = FlagOp.None;
        _fieldOp = (int)FlagOp.None;
        ForgetOperands();
    }

    /// <summary>Pushes int32 1 when (<paramref name="l"/> &amp; <paramref name="bit"/>) != 0.</summary>
    private void LdMsb(LocalBuilder l, ulong bit)
    {
        Ld(l);
        LdI8(bit);
        Op(OpCodes.And);
        LdI8(0);
        Op(OpCodes.Cgt_Un);
    }

    private void EmitShiftCl(ref FastOp op)
    {
        int size = op.Size;
        var nonzero = _il.DefineLabel();
        var done = _il.DefineLabel();
        LdReg(1);
        Op(OpCodes.Conv_I4);
        LdI4(size == 8 ? 0x3F : 0x1F);
        Op(OpCodes.And);
        St(_c0);
        LdReg(op.Dst, size);
        St(_t0);
        Ld(_c0);
        _il.Emit(OpCodes.Brtrue, nonzero);
        if (size == 4)
        {
            Ld(_t0);
            StReg(op.Dst, 4);
        }

        _il.Emit(OpCodes.Br, done);
        _il.MarkLabel(nonzero);
        Ld(_c0);
        Op(OpCodes.Conv_U8);
        St(_t3);
        switch (op.Aux)
        {
            case 0:
                Ld(_t0);
                Ld(_c0);
                Op(OpCodes.Shl);
                Mask(size);
                St(_t2);
                Ld(_t2);
                StReg(op.Dst, size);
                if (!FlagsDead)
                {
                    SetFlags(FlagOp.Shl, _t0, _t3, _t2, size);
                }

                break;
            case 1:
                Ld(_t0);
                Ld(_c0);
                Op(OpCodes.Shr_Un);
                St(_t2);
                Ld(_t2);
                StReg(op.Dst, size);
                if (!FlagsDead)
                {
                    SetFlags(FlagOp.Shr, _t0, _t3, _t2, size);
                }

                break;
            default:
                Ld(_t0);
                SignExtend(size);
                St(_t1);
                Ld(_t1);
                Ld(_c0);
                Op(OpCodes.Shr);
                Mask(size);
                St(_t2);
                Ld(_t2);
                StReg(op.Dst, size);
                if (!FlagsDead)
                {
                    SetFlags(FlagOp.Sar, _t1, _t3, _t2, size);
                }

                break;
        }

        _il.MarkLabel(done);

        // Two paths meet here (flags changed or not).
        ForgetFlags();
    }

    private void EmitSignExtendAcc(int which)
    {
        switch (which)
        {
            case 0:
                LdReg(0);
                SignExtend(2);
                StReg(0, 4);
                break;
            case 1:
                LdReg(0);
                SignExtend(4);
                StReg(0, 8);
                break;
            case 2:
                LdReg(0);
                SignExtend(4);
                LdI4(31);
                Op(OpCodes.Shr);
                StReg(2, 4);
                break;
            default:
                LdReg(0);
                LdI4(63);
                Op(OpCodes.Shr);
                StReg(2, 8);
                break;
        }
    }
}
