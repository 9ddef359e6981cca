// SSE moves and integer operations emitted as IL (UnitExtra.Sse, SseOp in Aux): XMM registers are read and written in
// place in the Cpu's FpuState, operations are SimdOps calls the JIT inlines. On the Linux boot these were the most
// frequent helper calls (MOVAPS alone ~6.7 M per boot, then PXOR, MOVD, PCMPEQB, PADDD, POR, MOVDQA, PSHUFD, MOVDQU,
// PMOVMSKB), each of which spilled and reloaded every register of the unit around an interpreter call.
// Faults stay precise: a disabled SSE unit (CR0.EM/TS, CR4.OSFXSR) or a misaligned operand of an aligned form leaves
// the instruction to the interpreter (Fallback), which raises #UD/#NM/#GP; memory faults exit as for other accesses.
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.Intrinsics;
using Iced.Intel;
using Ringvisor.Emulator.Decoding;
using Ringvisor.Emulator.Fpu;
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator.Translation;

internal sealed partial class UnitCompiler
{
    // FastOp fields for UnitExtra.Sse: Aux = SseOp, Dst/Src = XMM or GPR numbers, SrcSize = 1 when the r/m operand is
    // memory (its address in Base/Index/Scale/Disp/Seg/AddrSize), Size = 4/8 for MOVD/MOVQ with a GPR or memory,
    // Imm = PSHUFD's immediate, plus AlignedFlag when a 128-bit memory operand must be 16-byte aligned.
    private const ulong AlignedFlag = 0x100;

    private static readonly FieldInfo s_fieldXmm = typeof(FpuState).GetField(nameof(FpuState.Xmm))!;
    private LocalBuilder? _xv;
    private LocalBuilder? _xa;

    private static bool ClassifySse(in Instruction ins, ref FastOp op)
    {
        if (ins.HasLockPrefix)
        {
            return false;
        }

        // Start from a clean operand record (the decoder's FastOp of a Generic instruction may hold partial fields).
        op = new FastOp { Kind = op.Kind, Length = op.Length, Base = FastOp.NoReg, Index = FastOp.NoReg };
        if (s_xmmRmForms.TryGetValue(ins.Code, out var form))
        {
            return XmmRm(ins, ref op, form.Op, form.Aligned);
        }

        switch (ins.Code)
        {
            case Code.Movaps_xmmm128_xmm:
            case Code.Movapd_xmmm128_xmm:
            case Code.Movdqa_xmmm128_xmm:
            case Code.Movups_xmmm128_xmm:
            case Code.Movupd_xmmm128_xmm:
            case Code.Movdqu_xmmm128_xmm:
                {
                    bool aligned = ins.Code is Code.Movaps_xmmm128_xmm or Code.Movapd_xmmm128_xmm or Code.Movdqa_xmmm128_xmm;
                    if (ins.Op0Kind == OpKind.Register)
                    {
                        // Register to register: the same as the load form with the operands in the other order.
                        op.Aux = (byte)SseOp.Load;
                        op.Dst = Xmm(ins.Op0Register);
                        op.Src = Xmm(ins.Op1Register);
                        op.SrcSize = 0;
                        return true;
                    }

                    op.Aux = (byte)SseOp.Store;
                    op.Src = Xmm(ins.Op1Register);
                    op.SrcSize = 1;
                    op.Imm = aligned ? AlignedFlag : 0;
                    return FastOpBuilder.Memory(ins, ref op);
                }

            case Code.Pshufd_xmm_xmmm128_imm8:
                if (!XmmRm(ins, ref op, SseOp.Pshufd, aligned: true))
                {
                    return false;
                }

                op.Imm |= ins.Immediate8;
                return true;
            case Code.Movd_xmm_rm32:
            case Code.Movq_xmm_rm64:
                op.Aux = (byte)SseOp.MovToXmm;
                op.Dst = Xmm(ins.Op0Register);
                op.Size = (byte)(ins.Code == Code.Movd_xmm_rm32 ? 4 : 8);
                return GprOrMemory(ins, 1, ref op, ref op.Src);
            case Code.Movd_rm32_xmm:
            case Code.Movq_rm64_xmm:
                op.Aux = (byte)SseOp.MovFromXmm;
                op.Src = Xmm(ins.Op1Register);
                op.Size = (byte)(ins.Code == Code.Movd_rm32_xmm ? 4 : 8);
                return GprOrMemory(ins, 0, ref op, ref op.Dst);
            case Code.Movq_xmm_xmmm64:
                op.Aux = (byte)SseOp.MovqLoad;
                op.Dst = Xmm(ins.Op0Register);
                op.Size = 8;
                return XmmOrMemory(ins, 1, ref op, ref op.Src);
            case Code.Movq_xmmm64_xmm:
                op.Aux = (byte)SseOp.MovqStore;
                op.Src = Xmm(ins.Op1Register);
                op.Size = 8;
                return XmmOrMemory(ins, 0, ref op, ref op.Dst);
            case Code.Pmovmskb_r32_xmm:
            case Code.Pmovmskb_r64_xmm:
                op.Aux = (byte)SseOp.Pmovmskb;
                op.Src = Xmm(ins.Op1Register);
                op.SrcSize = 0;
                return FastOpBuilder.Gpr(ins.Op0Register, out op.Dst, out _);
            default:
                return false;
        }
    }

    // xmm, xmm/m128 forms: the operation and whether a memory operand must be 16-byte aligned (#GP otherwise).
    private static readonly Dictionary<Code, (SseOp Op, bool Aligned)> s_xmmRmForms = new()
    {
        [Code.Movaps_xmm_xmmm128] = (SseOp.Load, true),
        [Code.Movapd_xmm_xmmm128] = (SseOp.Load, true),
        [Code.Movdqa_xmm_xmmm128] = (SseOp.Load, true),
        [Code.Movups_xmm_xmmm128] = (SseOp.Load, false),
        [Code.Movupd_xmm_xmmm128] = (SseOp.Load, false),
        [Code.Movdqu_xmm_xmmm128] = (SseOp.Load, false),
        [Code.Pxor_xmm_xmmm128] = (SseOp.Xor, true),
        [Code.Xorps_xmm_xmmm128] = (SseOp.Xor, true),
        [Code.Xorpd_xmm_xmmm128] = (SseOp.Xor, true),
        [Code.Por_xmm_xmmm128] = (SseOp.Or, true),
        [Code.Orps_xmm_xmmm128] = (SseOp.Or, true),
        [Code.Pand_xmm_xmmm128] = (SseOp.And, true),
        [Code.Andps_xmm_xmmm128] = (SseOp.And, true),
        [Code.Pandn_xmm_xmmm128] = (SseOp.AndNot, true),
        [Code.Pcmpeqb_xmm_xmmm128] = (SseOp.CmpEqB, true),
        [Code.Pcmpeqw_xmm_xmmm128] = (SseOp.CmpEqW, true),
        [Code.Pcmpeqd_xmm_xmmm128] = (SseOp.CmpEqD, true),
        [Code.Paddd_xmm_xmmm128] = (SseOp.AddD, true),
        [Code.Paddq_xmm_xmmm128] = (SseOp.AddQ, true),
        [Code.Psubq_xmm_xmmm128] = (SseOp.SubQ, true),
        [Code.Pminub_xmm_xmmm128] = (SseOp.MinUB, true),
        [Code.Punpcklbw_xmm_xmmm128] = (SseOp.UnpackLowB, true),
        [Code.Punpcklqdq_xmm_xmmm128] = (SseOp.UnpackLowQ, true),
        [Code.Punpcklwd_xmm_xmmm128] = (SseOp.UnpackLowW, true),
        [Code.Punpckldq_xmm_xmmm128] = (SseOp.UnpackLowD, true),
        [Code.Punpckhbw_xmm_xmmm128] = (SseOp.UnpackHighB, true),
        [Code.Punpckhwd_xmm_xmmm128] = (SseOp.UnpackHighW, true),
        [Code.Punpckhdq_xmm_xmmm128] = (SseOp.UnpackHighD, true),
        [Code.Punpckhqdq_xmm_xmmm128] = (SseOp.UnpackHighQ, true),
        [Code.Pshufb_xmm_xmmm128] = (SseOp.Pshufb, true),
    };

    private static byte Xmm(Register r) => (byte)(r - Register.XMM0);

    /// <summary>xmm, xmm/m128 forms: Dst = XMM, Src = XMM or the memory operand.</summary>
    private static bool XmmRm(in Instruction ins, ref FastOp op, SseOp sop, bool aligned)
    {
        op.Aux = (byte)sop;
        op.Dst = Xmm(ins.Op0Register);
        op.Imm = 0;
        if (ins.Op1Kind == OpKind.Register)
        {
            op.Src = Xmm(ins.Op1Register);
            op.SrcSize = 0;
            return true;
        }

        op.SrcSize = 1;
        op.Imm = aligned ? AlignedFlag : 0;
        return FastOpBuilder.Memory(ins, ref op);
    }

    private static bool GprOrMemory(in Instruction ins, int operand, ref FastOp op, ref byte reg)
    {
        if (ins.GetOpKind(operand) == OpKind.Register)
        {
            op.SrcSize = 0;
            return FastOpBuilder.Gpr(ins.GetOpRegister(operand), out reg, out _);
        }

        op.SrcSize = 1;
        return FastOpBuilder.Memory(ins, ref op);
    }

    private static bool XmmOrMemory(in Instruction ins, int operand, ref FastOp op, ref byte reg)
    {
        if (ins.GetOpKind(operand) == OpKind.Register)
        {
            op.SrcSize = 0;
            reg = Xmm(ins.GetOpRegister(operand));
            return true;
        }

        op.SrcSize = 1;
        return FastOpBuilder.Memory(ins, ref op);
    }

    /// <summary>General-purpose registers an SSE form reads (address registers, a GPR source) and writes.</summary>
    private static void ScanSse(ref FastOp op, Action<int> use, Action<int> write)
    {
        if (op.SrcSize == 1)
        {
            use(op.Base);
            use(op.Index);
        }

        var sop = (SseOp)op.Aux;
        if (op.SrcSize == 0 && sop == SseOp.MovToXmm)
        {
            use(op.Src);
        }

        if (op.SrcSize == 0 && sop is SseOp.MovFromXmm or SseOp.Pmovmskb)
        {
            write(op.Dst);
        }
    }

    private void EmitSse(UnitInstruction ui, ref FastOp op)
    {
        _xv ??= _il.DeclareLocal(typeof(Vector128<byte>));
        _xa ??= _il.DeclareLocal(typeof(Vector128<byte>));
        _il.Emit(OpCodes.Ldarg_0);
        Call(Cpu.MethodSseUsable);
        _il.Emit(OpCodes.Brfalse, FallbackStub());
        var sop = (SseOp)op.Aux;
        bool memory = op.SrcSize == 1;
        if (memory)
        {
            EmitLinear(ref op);
            if ((op.Imm & AlignedFlag) != 0)
            {
                // A misaligned 128-bit operand of an aligned form: #GP(0), raised by the interpreter.
                Ld(_la);
                LdI8(15);
                Op(OpCodes.And);
                _il.Emit(OpCodes.Brtrue, FallbackStub());
            }
        }

        switch (sop)
        {
            case SseOp.Load:
                EmitXmmSource(ref op, memory);
                StXmm(op.Dst, _xv);
                break;
            case SseOp.Store:
                LdXmm(op.Src);
                St(_xv);
                EmitWrite16();
                EmitStoreCheck(ui.NextOffset, false);
                break;
            case SseOp.Pshufd:
                EmitXmmSource(ref op, memory);
                Ld(_xv);
                LdI4((int)(op.Imm & 0xFF));
                Call(SimdOp(nameof(SimdOps.Pshufd)));
                St(_xv);
                StXmm(op.Dst, _xv);
                break;
            case SseOp.MovToXmm:
                if (memory)
                {
                    EmitReadLinear(op.Size);
                }
                else
                {
                    LdReg(op.Src, op.Size);
                }

                Call(SimdOp(nameof(SimdOps.FromScalar)));
                St(_xv);
                StXmm(op.Dst, _xv);
                break;
            case SseOp.MovFromXmm:
                LdXmm(op.Src);
                Call(SimdOp(nameof(SimdOps.Low64)));
                if (memory)
                {
                    St(_val);
                    EmitWrite(op.Size, () => Ld(_la), () => Ld(_val), plain: false);
                    EmitStoreCheck(ui.NextOffset, false);
                }
                else
                {
                    StReg(op.Dst, op.Size);
                }

                break;
            case SseOp.MovqLoad:
                if (memory)
                {
                    EmitReadLinear(8);
                }
                else
                {
                    LdXmm(op.Src);
                    Call(SimdOp(nameof(SimdOps.Low64)));
                }

                Call(SimdOp(nameof(SimdOps.FromScalar)));
                St(_xv);
                StXmm(op.Dst, _xv);
                break;
            case SseOp.MovqStore:
                LdXmm(op.Src);
                Call(SimdOp(nameof(SimdOps.Low64)));
                if (memory)
                {
                    St(_val);
                    EmitWrite(8, () => Ld(_la), () => Ld(_val), plain: false);
                    EmitStoreCheck(ui.NextOffset, false);
                }
                else
                {
                    Call(SimdOp(nameof(SimdOps.FromScalar)));
                    St(_xv);
                    StXmm(op.Dst, _xv);
                }

                break;
            case SseOp.Pmovmskb:
                LdXmm(op.Src);
                Call(SimdOp(nameof(SimdOps.MoveMask)));
                StReg(op.Dst, 8);
                break;
            default:
                // Two-operand operations: dst = op(dst, src).
                EmitXmmSource(ref op, memory);
                LdXmm(op.Dst);
                Ld(_xv);
                Call(SimdOp(sop.ToString()));
                St(_xa);
                StXmm(op.Dst, _xa);
                break;
        }
    }

    private static readonly Dictionary<string, MethodInfo> s_simdOps =
        typeof(SimdOps).GetMethods(BindingFlags.Public | BindingFlags.Static).ToDictionary(m => m.Name);

    private static MethodInfo SimdOp(string name) => s_simdOps[name];

    /// <summary>_xv = the XMM source register, or the 16 bytes at _la (exits with the fault on failure).</summary>
    private void EmitXmmSource(ref FastOp op, bool memory)
    {
        if (!memory)
        {
            LdXmm(op.Src);
            St(_xv!);
            return;
        }

        // As for the 1-8 byte reads (EmitReadCall): a read tag for the page and all 16 bytes inside it read host memory
        // directly; anything else calls the accessor, which also faults and handles page-crossing and MMIO operands.
        var fault = FaultStub();
        var slow = _il.DefineLabel();
        var done = _il.DefineLabel();
        EmitTlbHostAddress(_la, s_fieldReadTag, 16, slow);
        _il.Emit(OpCodes.Unaligned, (byte)1);
        _il.Emit(OpCodes.Ldobj, typeof(Vector128<byte>));
        St(_xv!);
        _il.Emit(OpCodes.Br, done);
        _il.MarkLabel(slow);
        EmitStackSegmentForAccessor();
        _il.Emit(OpCodes.Ldarg_0);
        Ld(_la);
        _il.Emit(OpCodes.Ldloca, _xv!);
        Call(Cpu.MethodRead16);
        _il.Emit(OpCodes.Brfalse, fault);
        _il.MarkLabel(done);
    }

    private void EmitWrite16()
    {
        // Inline when the page has a write tag (dirty RAM without decoded code: no exit check needed, see EmitWrite) and
        // both quadwords lie in it; otherwise the accessor, which writes nothing on a fault.
        var fault = FaultStub();
        var slow = _il.DefineLabel();
        var done = _il.DefineLabel();
        EmitTlbHostAddress(_la, s_fieldWriteTag, 16, slow);
        Ld(_xv!);
        _il.Emit(OpCodes.Unaligned, (byte)1);
        _il.Emit(OpCodes.Stobj, typeof(Vector128<byte>));
        LdI4(0);
        St(_status);
        _il.Emit(OpCodes.Br, done);
        _il.MarkLabel(slow);
        EmitStackSegmentForAccessor();
        _il.Emit(OpCodes.Ldarg_0);
        Ld(_la);
        Ld(_xv!);
        LdCurrentPage();
        Call(Cpu.MethodWrite16);
        St(_status);
        Ld(_status);
        LdI4(1);
        _il.Emit(OpCodes.Beq, fault);
        _il.MarkLabel(done);
    }

    private void LdXmmAddress(int r)
    {
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, Cpu.FieldFpuRegs);
        _il.Emit(OpCodes.Ldfld, s_fieldXmm);
        LdI4(r);
        _il.Emit(OpCodes.Ldelema, typeof(Vector128<byte>));
    }

    private void LdXmm(int r)
    {
        LdXmmAddress(r);
        _il.Emit(OpCodes.Ldobj, typeof(Vector128<byte>));
    }

    private void StXmm(int r, LocalBuilder value)
    {
        LdXmmAddress(r);
        Ld(value);
        _il.Emit(OpCodes.Stobj, typeof(Vector128<byte>));
    }
}
