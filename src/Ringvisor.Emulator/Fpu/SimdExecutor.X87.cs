using System.Buffers.Binary;
using Iced.Intel;

namespace Ringvisor.Emulator.Fpu;

/// <summary>
/// x87 FPU instructions (SDM Vol. 1 ch. 8, Vol. 2 F*). Basic arithmetic, square root, conversions and compares are
/// exact 80-bit software arithmetic honouring precision control (FCW.PC) and rounding control (FCW.RC) through
/// <see cref="SoftFloat"/>. Transcendentals (FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X, FYL2XP1) are
/// computed in host double precision (about 53 correct bits instead of the CPU's 64+) and then widened.
/// Exceptions set FSW flags; an unmasked one sets FSW.ES and is delivered as #MF by the next waiting instruction.
/// </summary>
public static partial class SimdExecutor
{
    private const ushort FswConditionMask = FpuState.FswC0 | FpuState.FswC1 | FpuState.FswC2 | FpuState.FswC3;

    private static Mnemonic[] X87Mnemonics =>
    [
        Mnemonic.Fld, Mnemonic.Fst, Mnemonic.Fstp, Mnemonic.Fstpnce, Mnemonic.Fild, Mnemonic.Fist, Mnemonic.Fistp, Mnemonic.Fisttp,
        Mnemonic.Fbld, Mnemonic.Fbstp, Mnemonic.Fadd, Mnemonic.Faddp, Mnemonic.Fiadd, Mnemonic.Fsub, Mnemonic.Fsubp,
        Mnemonic.Fisub, Mnemonic.Fsubr, Mnemonic.Fsubrp, Mnemonic.Fisubr, Mnemonic.Fmul, Mnemonic.Fmulp,
        Mnemonic.Fimul, Mnemonic.Fdiv, Mnemonic.Fdivp, Mnemonic.Fidiv, Mnemonic.Fdivr, Mnemonic.Fdivrp,
        Mnemonic.Fidivr, Mnemonic.Fcom, Mnemonic.Fcomp, Mnemonic.Fcompp, Mnemonic.Fucom, Mnemonic.Fucomp,
        Mnemonic.Fucompp, Mnemonic.Ficom, Mnemonic.Ficomp, Mnemonic.Fcomi, Mnemonic.Fcomip, Mnemonic.Fucomi,
        Mnemonic.Fucomip, Mnemonic.Ftst, Mnemonic.Fxam, Mnemonic.Fchs, Mnemonic.Fabs, Mnemonic.Fsqrt,
        Mnemonic.Frndint, Mnemonic.Fscale, Mnemonic.Fxtract, Mnemonic.Fprem, Mnemonic.Fprem1, Mnemonic.Fsin,
        Mnemonic.Fcos, Mnemonic.Fsincos, Mnemonic.Fptan, Mnemonic.Fpatan, Mnemonic.F2xm1, Mnemonic.Fyl2x,
        Mnemonic.Fyl2xp1, Mnemonic.Fld1, Mnemonic.Fldz, Mnemonic.Fldpi, Mnemonic.Fldl2e, Mnemonic.Fldl2t,
        Mnemonic.Fldlg2, Mnemonic.Fldln2, Mnemonic.Fxch, Mnemonic.Fcmovb, Mnemonic.Fcmove, Mnemonic.Fcmovbe,
        Mnemonic.Fcmovu, Mnemonic.Fcmovnb, Mnemonic.Fcmovne, Mnemonic.Fcmovnbe, Mnemonic.Fcmovnu, Mnemonic.Ffree,
        Mnemonic.Ffreep, Mnemonic.Fincstp, Mnemonic.Fdecstp, Mnemonic.Fldcw, Mnemonic.Fstcw, Mnemonic.Fnstcw,
        Mnemonic.Fstsw, Mnemonic.Fnstsw, Mnemonic.Fclex, Mnemonic.Fnclex, Mnemonic.Finit, Mnemonic.Fninit,
        Mnemonic.Fldenv, Mnemonic.Fstenv, Mnemonic.Fnstenv, Mnemonic.Fsave, Mnemonic.Fnsave, Mnemonic.Frstor,
        Mnemonic.Fnop, Mnemonic.Fneni, Mnemonic.Fndisi, Mnemonic.Fnsetpm, Mnemonic.Feni, Mnemonic.Fdisi,
        Mnemonic.Fsetpm,
    ];

    private static IEnumerable<Mnemonic> ImplementedX87Mnemonics() => X87Mnemonics;

    private static SimdOutcome ExecuteX87(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var outcome = ExecuteX87Core(in i, s, a);
        if (outcome == SimdOutcome.Ok && !IsX87Control(i.Mnemonic))
        {
            // Only instructions that completed update FIP/FOP/FDP (a #PF-ing one is restarted later).
            RecordLastInstruction(in i, s, a);
        }

        return outcome;
    }

    private static SimdOutcome ExecuteX87Core(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var m = i.Mnemonic;
        switch (m)
        {
            case Mnemonic.Fld:
                return Fld(in i, s, a);
            case Mnemonic.Fild:
                return Fild(in i, s, a);
            case Mnemonic.Fbld:
                return Fbld(in i, s, a);
            case Mnemonic.Fst:
            case Mnemonic.Fstp:
            case Mnemonic.Fstpnce: // D9 D8+i: undocumented alias of FSTP ST(i)
                return Fst(in i, s, a, pop: m != Mnemonic.Fst);
            case Mnemonic.Fist:
            case Mnemonic.Fistp:
            case Mnemonic.Fisttp:
                return Fist(in i, s, a, pop: m != Mnemonic.Fist, truncate: m == Mnemonic.Fisttp);
            case Mnemonic.Fbstp:
                return Fbstp(in i, s, a);
            case Mnemonic.Fadd:
            case Mnemonic.Faddp:
            case Mnemonic.Fiadd:
            case Mnemonic.Fsub:
            case Mnemonic.Fsubp:
            case Mnemonic.Fisub:
            case Mnemonic.Fsubr:
            case Mnemonic.Fsubrp:
            case Mnemonic.Fisubr:
            case Mnemonic.Fmul:
            case Mnemonic.Fmulp:
            case Mnemonic.Fimul:
            case Mnemonic.Fdiv:
            case Mnemonic.Fdivp:
            case Mnemonic.Fidiv:
            case Mnemonic.Fdivr:
            case Mnemonic.Fdivrp:
            case Mnemonic.Fidivr:
                return X87Arith(in i, s, a);
            case Mnemonic.Fcom:
            case Mnemonic.Fcomp:
            case Mnemonic.Fcompp:
            case Mnemonic.Fucom:
            case Mnemonic.Fucomp:
            case Mnemonic.Fucompp:
            case Mnemonic.Ficom:
            case Mnemonic.Ficomp:
            case Mnemonic.Ftst:
            case Mnemonic.Fcomi:
            case Mnemonic.Fcomip:
            case Mnemonic.Fucomi:
            case Mnemonic.Fucomip:
                return X87Compare(in i, s, a);
            case Mnemonic.Fxam:
                Fxam(s);
                return SimdOutcome.Ok;
            case Mnemonic.Fchs:
            case Mnemonic.Fabs:
            case Mnemonic.Fsqrt:
            case Mnemonic.Frndint:
                X87Unary(s, m);
                return SimdOutcome.Ok;
            case Mnemonic.Fscale:
                Fscale(s);
                return SimdOutcome.Ok;
            case Mnemonic.Fxtract:
                Fxtract(s);
                return SimdOutcome.Ok;
            case Mnemonic.Fprem:
            case Mnemonic.Fprem1:
                Fprem(s, m == Mnemonic.Fprem1);
                return SimdOutcome.Ok;
            case Mnemonic.Fsin:
            case Mnemonic.Fcos:
            case Mnemonic.Fsincos:
            case Mnemonic.Fptan:
            case Mnemonic.Fpatan:
            case Mnemonic.F2xm1:
            case Mnemonic.Fyl2x:
            case Mnemonic.Fyl2xp1:
                X87Transcendental(s, m);
                return SimdOutcome.Ok;
            case Mnemonic.Fld1:
            case Mnemonic.Fldz:
            case Mnemonic.Fldpi:
            case Mnemonic.Fldl2e:
            case Mnemonic.Fldl2t:
            case Mnemonic.Fldlg2:
            case Mnemonic.Fldln2:
                PushConstant(s, m);
                return SimdOutcome.Ok;
            case Mnemonic.Fxch:
                Fxch(in i, s);
                return SimdOutcome.Ok;
            case Mnemonic.Fcmovb:
            case Mnemonic.Fcmove:
            case Mnemonic.Fcmovbe:
            case Mnemonic.Fcmovu:
            case Mnemonic.Fcmovnb:
            case Mnemonic.Fcmovne:
            case Mnemonic.Fcmovnbe:
            case Mnemonic.Fcmovnu:
                Fcmov(in i, s, a);
                return SimdOutcome.Ok;
            case Mnemonic.Ffree:
                s.SetEmpty(StIndex(i.Op0Register));
                return SimdOutcome.Ok;
            case Mnemonic.Ffreep:
                s.SetEmpty(StIndex(i.Op0Register));
                s.Top = (s.Top + 1) & 7;
                return SimdOutcome.Ok;
            case Mnemonic.Fincstp:
            case Mnemonic.Fdecstp:
                s.Top = (s.Top + (m == Mnemonic.Fincstp ? 1 : 7)) & 7;
                s.Fsw = (ushort)(s.Fsw & ~FpuState.FswC1);
                return SimdOutcome.Ok;
            case Mnemonic.Fldcw:
            {
                Span<byte> b = stackalloc byte[2];
                if (!a.ReadMemory(a.GetMemoryAddress(in i), b))
                {
                    return SimdOutcome.MemoryFaulted;
                }

                // Bit 6 reads as 1, bits 6-7 and 13-15 are not writable (checked on the host: FLDCW 0 -> 0x0040).
                s.Fcw = (ushort)((BinaryPrimitives.ReadUInt16LittleEndian(b) & 0x1F3F) | 0x40);
                s.UpdateErrorSummary();
                return SimdOutcome.Ok;
            }

            case Mnemonic.Fstcw:
            case Mnemonic.Fnstcw:
                return StoreWord(in i, a, s.Fcw);
            case Mnemonic.Fstsw:
            case Mnemonic.Fnstsw:
                if (i.Op0Kind == OpKind.Register)
                {
                    a.WriteGpr(Register.AX, s.Fsw);
                    return SimdOutcome.Ok;
                }

                return StoreWord(in i, a, s.Fsw);
            case Mnemonic.Fclex:
            case Mnemonic.Fnclex:
                s.Fsw = (ushort)(s.Fsw & ~(0x00FF | FpuState.FswB));
                return SimdOutcome.Ok;
            case Mnemonic.Finit:
            case Mnemonic.Fninit:
                s.Fninit();
                return SimdOutcome.Ok;
            case Mnemonic.Fstenv:
            case Mnemonic.Fnstenv:
            case Mnemonic.Fsave:
            case Mnemonic.Fnsave:
                return StoreEnvironment(in i, s, a, save: m is Mnemonic.Fsave or Mnemonic.Fnsave);
            case Mnemonic.Fldenv:
            case Mnemonic.Frstor:
                return LoadEnvironment(in i, s, a, restore: m == Mnemonic.Frstor);
            default:
                // FNOP; FENI/FDISI/FSETPM are no-ops since the 80387 (SDM Vol. 1 8.1.5 note).
                return SimdOutcome.Ok;
        }
    }

    private static bool IsX87Control(Mnemonic m) => m is Mnemonic.Finit or Mnemonic.Fninit or Mnemonic.Fclex
        or Mnemonic.Fnclex or Mnemonic.Fldcw or Mnemonic.Fstcw or Mnemonic.Fnstcw or Mnemonic.Fstsw
        or Mnemonic.Fnstsw or Mnemonic.Fstenv or Mnemonic.Fnstenv or Mnemonic.Fldenv or Mnemonic.Fsave
        or Mnemonic.Fnsave or Mnemonic.Frstor or Mnemonic.Fneni or Mnemonic.Fndisi or Mnemonic.Fnsetpm
        or Mnemonic.Feni or Mnemonic.Fdisi or Mnemonic.Fsetpm;

    /// <summary>FIP/FCS, FOP and FDP/FDS of the last non-control instruction (SDM Vol. 1 8.1.8-8.1.9). FOP is exact
    /// for register forms; for memory forms the ModR/M mod and r/m fields are not known here and read as 0.
    /// FDP is the operand's linear address (equal to the offset with flat segments).</summary>
    private static void RecordLastInstruction(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        s.Fip = i.IP;
        s.Fcs = a.ReadSegmentSelector(Register.CS);
        var op = i.Code.ToOpCode();
        int first;
        int modrm;
        if (i.OpCount > 0 && i.Op0Kind == OpKind.Memory)
        {
            first = (int)(op.OpCode & 0xFF);
            modrm = (op.GroupIndex & 7) << 3;
            s.Fdp = a.GetMemoryAddress(in i);
            s.Fds = a.ReadSegmentSelector(i.MemorySegment);
        }
        else
        {
            // Register forms are two-byte opcodes in Iced (e.g. D8 C0 for FADD ST0, ST(i)); add the ST(i) index.
            var sti = 0;
            for (var k = 0; k < i.OpCount; k++)
            {
                if (i.GetOpKind(k) == OpKind.Register && i.GetOpRegister(k) is >= Register.ST1 and <= Register.ST7)
                {
                    sti = i.GetOpRegister(k) - Register.ST0;
                }
            }

            first = (int)((op.OpCode >> 8) & 0xFF);
            modrm = (int)(op.OpCode & 0xFF) | sti;
        }

        s.Fop = (ushort)((((int)first & 7) << 8) | (modrm & 0xFF));
    }

    private static int StIndex(Register r) => r - Register.ST0;

    private static FpFormat PrecisionFormat(FpuState s) => ((s.Fcw >> 8) & 3) switch
    {
        0 => FpFormat.ExtendedPc24,
        2 => FpFormat.ExtendedPc53,
        _ => FpFormat.Extended,
    };

    private static void SetConditionCodes(FpuState s, ushort codes) =>
        s.Fsw = (ushort)((s.Fsw & ~FswConditionMask) | codes);

    /// <summary>Records exception flags (C1 from RoundedUp when inexact) and ES. Returns true when an unmasked
    /// invalid, denormal or divide-by-zero exception means the destination must not be written (SDM Vol. 1
    /// 8.5.1.1 etc.).</summary>
    private static bool Raise(FpuState s, FpExceptions flags)
    {
        var arch = (ushort)(flags & FpExceptions.Architectural);
        const ushort Pre = (ushort)(FpExceptions.Invalid | FpExceptions.Denormal | FpExceptions.DivideByZero);
        if ((arch & Pre & ~s.Fcw) != 0)
        {
            // An unmasked pre-computation exception stops the operation: only IE/DE/ZE are recorded and C1 keeps
            // its value (matched against the host).
            s.Fsw = (ushort)(s.Fsw | (arch & Pre));
            s.UpdateErrorSummary();
            return true;
        }

        var fsw = (ushort)(s.Fsw | arch);
        if ((flags & FpExceptions.Precision) != 0)
        {
            fsw = (flags & FpExceptions.RoundedUp) != 0 ? (ushort)(fsw | FpuState.FswC1) : (ushort)(fsw & ~FpuState.FswC1);
        }

        s.Fsw = fsw;
        s.UpdateErrorSummary();
        var unmasked = arch & ~s.Fcw & 0x3F;
        return (unmasked & (ushort)(FpExceptions.Invalid | FpExceptions.Denormal | FpExceptions.DivideByZero)) != 0;
    }

    /// <summary>Whether <see cref="Raise"/> would suppress the destination write, without changing any state (used
    /// by stores, which must not touch FSW when the memory write then faults).</summary>
    private static bool Suppresses(FpuState s, FpExceptions flags) =>
        ((ushort)(flags & (FpExceptions.Invalid | FpExceptions.Denormal | FpExceptions.DivideByZero)) & ~s.Fcw & 0x3F)
        != 0;

    /// <summary>Stack underflow (SDM Vol. 1 8.5.1.1): IE + SF with C1 = 0; true when masked (the caller then uses the
    /// QNaN indefinite).</summary>
    private static bool StackUnderflow(FpuState s)
    {
        s.Fsw = (ushort)((s.Fsw | FpuState.FswIe | FpuState.FswSf) & ~FpuState.FswC1);
        s.UpdateErrorSummary();
        return (s.Fcw & FpuState.FswIe) != 0;
    }

    /// <summary>Pushes a value; on stack overflow sets IE + SF + C1 and pushes the indefinite when masked.</summary>
    private static void Push(FpuState s, Float80 value)
    {
        if (!s.IsEmpty(7))
        {
            s.Fsw = (ushort)(s.Fsw | FpuState.FswIe | FpuState.FswSf | FpuState.FswC1);
            s.UpdateErrorSummary();
            if ((s.Fcw & FpuState.FswIe) == 0)
            {
                return;
            }

            value = Float80.Indefinite;
        }

        s.Top = (s.Top + 7) & 7;
        s.St(0) = value;
        s.SetValid(0);
    }

    private static void Pop(FpuState s)
    {
        s.SetEmpty(0);
        s.Top = (s.Top + 1) & 7;
    }

    /// <summary>Writes a result into ST(i), applying the unmasked overflow/underflow exponent rebias of 24576
    /// (SDM Vol. 1 8.5.4/8.5.5).</summary>
    private static void WriteSt(FpuState s, int index, FpValue v, FpExceptions flags)
    {
        if (v.Class == FpClass.Finite)
        {
            if ((flags & FpExceptions.Overflow) != 0 && (s.Fcw & FpuState.FswOe) == 0)
            {
                v = v with { Exponent = v.Exponent - 24576 };
                if (v.Exponent > Float80.ExponentBias)
                {
                    // Still out of range after the rebias (FSCALE can do that): infinity, inexact, rounded up.
                    v = FpValue.Infinity(v.Sign);
                    s.Fsw = (ushort)(s.Fsw | FpuState.FswPe | FpuState.FswC1);
                }
            }
            else if ((flags & FpExceptions.Underflow) != 0 && (s.Fcw & FpuState.FswUe) == 0)
            {
                v = v with { Exponent = v.Exponent + 24576 };
                if (v.Exponent < -16382)
                {
                    v = FpValue.Zero(v.Sign);
                    s.Fsw = (ushort)((s.Fsw | FpuState.FswPe) & ~FpuState.FswC1);
                }
            }

            s.UpdateErrorSummary();
        }

        s.St(index) = SoftFloat.PackExtended(v);
        s.SetValid(index);
    }

    private static FpValue UnpackSt(FpuState s, int index, ref FpExceptions flags) =>
        SoftFloat.UnpackExtended(s.St(index), ref flags);

    /// <summary>Reads a memory operand of an x87 instruction as an unpacked value: m32fp, m64fp, m80fp, m16int,
    /// m32int, m64int.</summary>
    private static SimdOutcome LoadX87Memory(in Instruction i, ISimdOperandAccess a, ref FpExceptions flags,
        out FpValue value)
    {
        value = default;
        var size = i.MemorySize.GetSize();
        Span<byte> b = stackalloc byte[10];
        if (size is <= 0 or > 10)
        {
            return SimdOutcome.InvalidOpcode;
        }

        if (!a.ReadMemory(a.GetMemoryAddress(in i), b[..size]))
        {
            return SimdOutcome.MemoryFaulted;
        }

        value = i.MemorySize switch
        {
            MemorySize.Float32 => SoftFloat.UnpackSingle(BinaryPrimitives.ReadUInt32LittleEndian(b), false, ref flags),
            MemorySize.Float64 => SoftFloat.UnpackDouble(BinaryPrimitives.ReadUInt64LittleEndian(b), false, ref flags),
            MemorySize.Float80 => SoftFloat.UnpackExtended(
                new Float80(BinaryPrimitives.ReadUInt64LittleEndian(b), BinaryPrimitives.ReadUInt16LittleEndian(b[8..])),
                ref flags),
            MemorySize.Int16 => SoftFloat.FromInteger(BinaryPrimitives.ReadInt16LittleEndian(b)),
            MemorySize.Int32 => SoftFloat.FromInteger(BinaryPrimitives.ReadInt32LittleEndian(b)),
            _ => SoftFloat.FromInteger(BinaryPrimitives.ReadInt64LittleEndian(b)),
        };
        return SimdOutcome.Ok;
    }

    private static SimdOutcome Fld(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        Float80 value;
        if (i.Op0Kind == OpKind.Register)
        {
            var src = StIndex(i.Op0Register);
            if (s.IsEmpty(src))
            {
                if (!StackUnderflow(s))
                {
                    return SimdOutcome.Ok;
                }

                value = Float80.Indefinite;
            }
            else
            {
                value = s.St(src);
            }
        }
        else if (i.MemorySize == MemorySize.Float80)
        {
            // FLD m80fp loads the bits as they are: no conversion, no SNaN or denormal exception.
            Span<byte> b = stackalloc byte[10];
            if (!a.ReadMemory(a.GetMemoryAddress(in i), b))
            {
                return SimdOutcome.MemoryFaulted;
            }

            value = new Float80(BinaryPrimitives.ReadUInt64LittleEndian(b), BinaryPrimitives.ReadUInt16LittleEndian(b[8..]));
        }
        else
        {
            var flags = FpExceptions.None;
            var r = LoadX87Memory(in i, a, ref flags, out var v);
            if (r != SimdOutcome.Ok)
            {
                return r;
            }

            if (!s.IsEmpty(7))
            {
                // Stack overflow takes precedence over the operand's own exceptions (matched against the host).
                s.Fsw = (ushort)(s.Fsw & ~FpuState.FswC1);
                Push(s, Float80.Indefinite);
                return SimdOutcome.Ok;
            }

            if (v.Class == FpClass.SignalingNaN)
            {
                flags |= FpExceptions.Invalid;
                v = v.Quieted();
            }

            // An unmasked SNaN is not loaded; an unmasked denormal is loaded anyway (both observed on the host).
            Raise(s, flags);
            if ((flags & FpExceptions.Invalid) != 0 && (s.Fcw & FpuState.FswIe) == 0)
            {
                return SimdOutcome.Ok;
            }

            value = SoftFloat.PackExtended(v);
        }

        s.Fsw = (ushort)(s.Fsw & ~FpuState.FswC1);
        Push(s, value);
        return SimdOutcome.Ok;
    }

    private static SimdOutcome Fild(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var flags = FpExceptions.None;
        var r = LoadX87Memory(in i, a, ref flags, out var v);
        if (r != SimdOutcome.Ok)
        {
            return r;
        }

        s.Fsw = (ushort)(s.Fsw & ~FpuState.FswC1);
        Push(s, SoftFloat.PackExtended(v));
        return SimdOutcome.Ok;
    }

    private static SimdOutcome Fst(in Instruction i, FpuState s, ISimdOperandAccess a, bool pop)
    {
        if (s.IsEmpty(0))
        {
            if (!StackUnderflow(s))
            {
                return SimdOutcome.Ok;
            }
        }

        var value = s.IsEmpty(0) ? Float80.Indefinite : s.St(0);
        if (i.Op0Kind == OpKind.Register)
        {
            var dst = StIndex(i.Op0Register);
            s.St(dst) = value;
            s.SetValid(dst);
        }
        else
        {
            Span<byte> b = stackalloc byte[10];
            int size;
            var flags = FpExceptions.None;
            if (i.MemorySize == MemorySize.Float80)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(b, value.Significand);
                BinaryPrimitives.WriteUInt16LittleEndian(b[8..], value.SignExponent);
                size = 10;
            }
            else
            {
                var dbl = i.MemorySize == MemorySize.Float64;
                var env = FpEnv.FromFcw(s.Fcw);
                var v = SoftFloat.UnpackExtended(value, ref flags);
                flags &= ~FpExceptions.Denormal; // FST does not report denormal operands of the 80-bit source.
                if (v.Class == FpClass.Unsupported)
                {
                    flags |= FpExceptions.Invalid;
                    v = FpValue.DefaultNaN;
                }
                else if (v.IsNaN)
                {
                    flags |= v.Class == FpClass.SignalingNaN ? FpExceptions.Invalid : 0;
                    v = v.Quieted();
                }
                else
                {
                    v = SoftFloat.RoundTo(v, dbl ? FpFormat.Double : FpFormat.Single, env, ref flags);
                }

                if (Suppresses(s, flags)
                    || ((ushort)(flags & (FpExceptions.Overflow | FpExceptions.Underflow)) & ~s.Fcw) != 0)
                {
                    // Unmasked: memory is not written (SDM Vol. 1 8.5.4.2), and the host reports neither PE nor C1.
                    Raise(s, flags & ~(FpExceptions.Precision | FpExceptions.RoundedUp));
                    return SimdOutcome.Ok;
                }

                if (dbl)
                {
                    BinaryPrimitives.WriteUInt64LittleEndian(b, SoftFloat.PackDouble(v));
                    size = 8;
                }
                else
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(b, SoftFloat.PackSingle(v));
                    size = 4;
                }
            }

            if (!a.WriteMemory(a.GetMemoryAddress(in i), b[..size]))
            {
                return SimdOutcome.MemoryFaulted; // FSW untouched: the instruction did not happen.
            }

            Raise(s, flags);
            if ((flags & FpExceptions.Precision) == 0)
            {
                s.Fsw = (ushort)(s.Fsw & ~FpuState.FswC1);
            }
        }

        if (pop)
        {
            Pop(s);
        }

        return SimdOutcome.Ok;
    }

    private static SimdOutcome Fist(in Instruction i, FpuState s, ISimdOperandAccess a, bool pop, bool truncate)
    {
        var flags = FpExceptions.None;
        var size = i.MemorySize.GetSize();
        long value;
        if (s.IsEmpty(0))
        {
            if (!StackUnderflow(s))
            {
                return SimdOutcome.Ok;
            }

            value = long.MinValue >> (64 - (size * 8));
        }
        else
        {
            var v = UnpackSt(s, 0, ref flags);
            flags &= ~FpExceptions.Denormal;
            var rc = truncate ? RoundingMode.TowardZero : FpEnv.FromFcw(s.Fcw).Rounding;
            value = SoftFloat.ToInteger(v, size * 8, rc, ref flags);
            if (Suppresses(s, flags))
            {
                Raise(s, flags);
                return SimdOutcome.Ok;
            }
        }

        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, value);
        if (!a.WriteMemory(a.GetMemoryAddress(in i), b[..size]))
        {
            return SimdOutcome.MemoryFaulted;
        }

        Raise(s, flags);

        if ((flags & FpExceptions.Precision) == 0)
        {
            s.Fsw = (ushort)(s.Fsw & ~FpuState.FswC1);
        }

        if (pop)
        {
            Pop(s);
        }

        return SimdOutcome.Ok;
    }

    private static SimdOutcome Fbld(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        Span<byte> b = stackalloc byte[10];
        if (!a.ReadMemory(a.GetMemoryAddress(in i), b))
        {
            return SimdOutcome.MemoryFaulted;
        }

        // 18 packed BCD digits in bytes 0-8 (least significant first), sign in bit 7 of byte 9 (SDM Vol. 1 4.7).
        long value = 0;
        for (var k = 8; k >= 0; k--)
        {
            value = (value * 100) + ((b[k] >> 4) * 10) + (b[k] & 0xF);
        }

        var v = SoftFloat.FromInteger(value);
        if ((b[9] & 0x80) != 0)
        {
            v = v.Negated();
        }

        s.Fsw = (ushort)(s.Fsw & ~FpuState.FswC1);
        Push(s, SoftFloat.PackExtended(v));
        return SimdOutcome.Ok;
    }

    private static SimdOutcome Fbstp(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        Span<byte> b = stackalloc byte[10];
        b.Clear();
        var flags = FpExceptions.None;
        var indefinite = false;
        if (s.IsEmpty(0))
        {
            if (!StackUnderflow(s))
            {
                return SimdOutcome.Ok;
            }

            indefinite = true;
        }
        else
        {
            var v = UnpackSt(s, 0, ref flags);
            flags &= ~FpExceptions.Denormal;
            var n = SoftFloat.ToInteger(v, 64, FpEnv.FromFcw(s.Fcw).Rounding, ref flags);
            const long Limit = 999_999_999_999_999_999;
            if ((flags & FpExceptions.Invalid) != 0 || n > Limit || n < -Limit)
            {
                flags = (flags | FpExceptions.Invalid) & ~FpExceptions.Precision;
                indefinite = true;
            }

            if (Suppresses(s, flags))
            {
                Raise(s, flags);
                return SimdOutcome.Ok;
            }

            if (!indefinite)
            {
                var negative = n < 0 || (n == 0 && v.Sign);
                var magnitude = (ulong)Math.Abs(n);
                for (var k = 0; k < 9; k++)
                {
                    var lo = (int)(magnitude % 10);
                    magnitude /= 10;
                    var hi = (int)(magnitude % 10);
                    magnitude /= 10;
                    b[k] = (byte)((hi << 4) | lo);
                }

                b[9] = negative ? (byte)0x80 : (byte)0;
            }
        }

        if (indefinite)
        {
            // BCD indefinite (SDM Vol. 1 Table 4-4): FFFF C000 0000 0000 0000h.
            b.Clear();
            b[7] = 0xC0;
            b[8] = 0xFF;
            b[9] = 0xFF;
        }

        if (!a.WriteMemory(a.GetMemoryAddress(in i), b))
        {
            return SimdOutcome.MemoryFaulted;
        }

        Raise(s, flags);
        Pop(s);
        return SimdOutcome.Ok;
    }

    /// <summary>x87 NaN rules (SDM Vol. 1 Table 4-7, x87 column): a QNaN beats an SNaN; between two NaNs of the same
    /// kind the larger significand wins; SNaNs are quieted and signal invalid.</summary>
    private static bool X87PropagateNaN(FpValue x, FpValue y, ref FpExceptions flags, out FpValue nan)
    {
        nan = default;
        if (x.Class == FpClass.Unsupported || y.Class == FpClass.Unsupported)
        {
            flags |= FpExceptions.Invalid;
            nan = FpValue.DefaultNaN;
            return true;
        }

        if (!x.IsNaN && !y.IsNaN)
        {
            return false;
        }

        if (x.Class == FpClass.SignalingNaN || y.Class == FpClass.SignalingNaN)
        {
            flags |= FpExceptions.Invalid;
        }

        if (x.IsNaN && y.IsNaN)
        {
            if (x.Class != y.Class)
            {
                nan = x.Class == FpClass.QuietNaN ? x : y.Quieted();
                return true;
            }

            var xs = x.Significand | (1UL << 63);
            var ys = y.Significand | (1UL << 63);
            nan = (xs > ys || (xs == ys && !x.Sign) ? x : y).Quieted();
            return true;
        }

        nan = (x.IsNaN ? x : y).Quieted();
        return true;
    }

    private static SimdOutcome X87Arith(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var m = i.Mnemonic;
        var flags = FpExceptions.None;
        int dst;
        FpValue x;
        FpValue y;
        if (i.Op0Kind == OpKind.Memory)
        {
            dst = 0;
            var r = LoadX87Memory(in i, a, ref flags, out y);
            if (r != SimdOutcome.Ok)
            {
                return r;
            }

            if (s.IsEmpty(0))
            {
                if (StackUnderflow(s))
                {
                    WriteSt(s, 0, FpValue.DefaultNaN, FpExceptions.None);
                }

                return SimdOutcome.Ok;
            }

            x = UnpackSt(s, 0, ref flags);
        }
        else
        {
            dst = StIndex(i.Op0Register);
            var src = StIndex(i.Op1Register);
            if (s.IsEmpty(dst) || s.IsEmpty(src))
            {
                if (StackUnderflow(s))
                {
                    WriteSt(s, dst, FpValue.DefaultNaN, FpExceptions.None);
                    if (m is Mnemonic.Faddp or Mnemonic.Fsubp or Mnemonic.Fsubrp or Mnemonic.Fmulp or Mnemonic.Fdivp
                        or Mnemonic.Fdivrp)
                    {
                        Pop(s);
                    }
                }

                return SimdOutcome.Ok;
            }

            x = UnpackSt(s, dst, ref flags);
            y = UnpackSt(s, src, ref flags);
        }

        if (m is Mnemonic.Fsubr or Mnemonic.Fsubrp or Mnemonic.Fisubr or Mnemonic.Fdivr or Mnemonic.Fdivrp
            or Mnemonic.Fidivr)
        {
            (x, y) = (y, x);
        }

        var format = PrecisionFormat(s);
        var env = FpEnv.FromFcw(s.Fcw);
        FpValue result;
        if (!X87PropagateNaN(x, y, ref flags, out result))
        {
            result = m switch
            {
                Mnemonic.Fadd or Mnemonic.Faddp or Mnemonic.Fiadd => SoftFloat.Add(x, y, format, env, ref flags),
                Mnemonic.Fsub or Mnemonic.Fsubp or Mnemonic.Fisub or Mnemonic.Fsubr or Mnemonic.Fsubrp
                    or Mnemonic.Fisubr => SoftFloat.Add(x, y.Negated(), format, env, ref flags),
                Mnemonic.Fmul or Mnemonic.Fmulp or Mnemonic.Fimul => SoftFloat.Multiply(x, y, format, env, ref flags),
                _ => SoftFloat.Divide(x, y, format, env, ref flags),
            };
        }

        flags = SoftFloat.DenormalPrecedence(flags, x, y);
        if (Raise(s, flags))
        {
            // An unmasked invalid-operand, denormal or divide-by-zero exception leaves the destination and the stack
            // unchanged: the P forms do not pop (SDM Vol. 1 §8.5.1-8.5.3, "If the exception is not masked ... the
            // destination operand and the stack are not modified"; the real CPU agrees, see the differential suite).
            return SimdOutcome.Ok;
        }

        if ((flags & FpExceptions.Precision) == 0)
        {
            s.Fsw = (ushort)(s.Fsw & ~FpuState.FswC1);
        }

        WriteSt(s, dst, result, flags);
        if (m is Mnemonic.Faddp or Mnemonic.Fsubp or Mnemonic.Fsubrp or Mnemonic.Fmulp or Mnemonic.Fdivp
            or Mnemonic.Fdivrp)
        {
            Pop(s);
        }

        return SimdOutcome.Ok;
    }

    private static SimdOutcome X87Compare(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var m = i.Mnemonic;
        var flags = FpExceptions.None;
        FpValue y;
        var srcIndex = 1;
        if (m == Mnemonic.Ftst)
        {
            y = FpValue.Zero(false);
        }
        else if (i.OpCount > 0 && i.Op0Kind == OpKind.Memory)
        {
            var r = LoadX87Memory(in i, a, ref flags, out y);
            if (r != SimdOutcome.Ok)
            {
                return r;
            }
        }
        else
        {
            if (i.OpCount == 2)
            {
                srcIndex = StIndex(i.Op1Register);
            }
            else if (i.OpCount == 1)
            {
                srcIndex = StIndex(i.Op0Register);
            }

            y = default;
        }

        var pops = m switch
        {
            Mnemonic.Fcompp or Mnemonic.Fucompp => 2,
            Mnemonic.Fcomp or Mnemonic.Fucomp or Mnemonic.Ficomp or Mnemonic.Fcomip or Mnemonic.Fucomip => 1,
            _ => 0,
        };
        var toEflags = m is Mnemonic.Fcomi or Mnemonic.Fcomip or Mnemonic.Fucomi or Mnemonic.Fucomip;
        var usesStSource = m != Mnemonic.Ftst && !(i.OpCount > 0 && i.Op0Kind == OpKind.Memory);
        int? c;
        if (s.IsEmpty(0) || (usesStSource && s.IsEmpty(srcIndex)))
        {
            if (!StackUnderflow(s))
            {
                return SimdOutcome.Ok;
            }

            c = null;
        }
        else
        {
            var x = UnpackSt(s, 0, ref flags);
            if (usesStSource)
            {
                y = UnpackSt(s, srcIndex, ref flags);
            }

            var quiet = m is Mnemonic.Fucom or Mnemonic.Fucomp or Mnemonic.Fucompp or Mnemonic.Fucomi
                or Mnemonic.Fucomip;
            var unordered = x.IsNaN || y.IsNaN;
            if (x.Class is FpClass.SignalingNaN or FpClass.Unsupported || y.Class is FpClass.SignalingNaN
                    or FpClass.Unsupported || (unordered && !quiet))
            {
                flags |= FpExceptions.Invalid;
            }

            // Condition codes / EFLAGS are written even when the exception is unmasked (observed on the host:
            // an unmasked SNaN compare still reports "unordered").
            flags = SoftFloat.DenormalPrecedence(flags, x, y);
            Raise(s, flags);
            c = SoftFloat.Compare(x, y);
        }

        if (toEflags)
        {
            var value = c switch
            {
                null => FlagZf | FlagPf | FlagCf,
                0 => FlagZf,
                < 0 => FlagCf,
                _ => 0UL,
            };
            a.SetFlags(FlagZf | FlagPf | FlagCf | FlagOf | FlagSf | FlagAf, value);
            s.Fsw = (ushort)(s.Fsw & ~FpuState.FswC1);
        }
        else
        {
            SetConditionCodes(s, c switch
            {
                null => FpuState.FswC3 | FpuState.FswC2 | FpuState.FswC0,
                0 => FpuState.FswC3,
                < 0 => FpuState.FswC0,
                _ => 0,
            });
        }

        for (var k = 0; k < pops; k++)
        {
            Pop(s);
        }

        return SimdOutcome.Ok;
    }

    /// <summary>FXAM class codes C3 C2 C0 (SDM Vol. 2A FXAM); C1 = sign. Works on empty registers too.</summary>
    private static void Fxam(FpuState s)
    {
        var r = s.St(0);
        ushort codes;
        if (s.IsEmpty(0))
        {
            codes = FpuState.FswC3 | FpuState.FswC0;
        }
        else if (r.IsUnsupported)
        {
            codes = 0;
        }
        else if (r.IsNaN)
        {
            codes = FpuState.FswC0;
        }
        else if (r.IsInfinity)
        {
            codes = FpuState.FswC2 | FpuState.FswC0;
        }
        else if (r.IsZero)
        {
            codes = FpuState.FswC3;
        }
        else if (r.Exponent == 0)
        {
            codes = FpuState.FswC3 | FpuState.FswC2;
        }
        else
        {
            codes = FpuState.FswC2;
        }

        if (r.Sign)
        {
            codes |= FpuState.FswC1;
        }

        SetConditionCodes(s, codes);
    }

    private static void X87Unary(FpuState s, Mnemonic m)
    {
        if (s.IsEmpty(0))
        {
            if (StackUnderflow(s))
            {
                WriteSt(s, 0, FpValue.DefaultNaN, FpExceptions.None);
            }

            return;
        }

        switch (m)
        {
            case Mnemonic.Fchs:
                s.St(0) = s.St(0).Negate();
                s.Fsw = (ushort)(s.Fsw & ~FpuState.FswC1);
                return;
            case Mnemonic.Fabs:
                s.St(0) = s.St(0).Abs();
                s.Fsw = (ushort)(s.Fsw & ~FpuState.FswC1);
                return;
        }

        var flags = FpExceptions.None;
        var x = UnpackSt(s, 0, ref flags);
        FpValue result;
        if (X87PropagateNaN(x, x, ref flags, out var nan))
        {
            result = nan;
        }
        else if (m == Mnemonic.Fsqrt)
        {
            result = SoftFloat.Sqrt(x, PrecisionFormat(s), FpEnv.FromFcw(s.Fcw), ref flags);
        }
        else
        {
            result = SoftFloat.RoundToIntegral(x, FpEnv.FromFcw(s.Fcw).Rounding, ref flags);
        }

        flags = SoftFloat.DenormalPrecedence(flags, x, x);
        if (!Raise(s, flags))
        {
            if ((flags & FpExceptions.Precision) == 0)
            {
                s.Fsw = (ushort)(s.Fsw & ~FpuState.FswC1);
            }

            WriteSt(s, 0, result, flags);
        }
    }

    private static void Fscale(FpuState s)
    {
        if (s.IsEmpty(0) || s.IsEmpty(1))
        {
            if (StackUnderflow(s))
            {
                WriteSt(s, 0, FpValue.DefaultNaN, FpExceptions.None);
            }

            return;
        }

        var flags = FpExceptions.None;
        var x = UnpackSt(s, 0, ref flags);
        var y = UnpackSt(s, 1, ref flags);
        FpValue result;
        if (X87PropagateNaN(x, y, ref flags, out var nan))
        {
            result = nan;
        }
        else if (y.Class == FpClass.Infinity)
        {
            // 0 * 2^+inf and inf * 2^-inf are invalid; otherwise the scale saturates.
            if ((x.Class == FpClass.Zero && !y.Sign) || (x.Class == FpClass.Infinity && y.Sign))
            {
                flags |= FpExceptions.Invalid;
                result = FpValue.DefaultNaN;
            }
            else if (x.Class is FpClass.Zero or FpClass.Infinity)
            {
                result = x;
            }
            else
            {
                result = y.Sign ? FpValue.Zero(x.Sign) : FpValue.Infinity(x.Sign);
            }
        }
        else if (x.Class != FpClass.Finite)
        {
            result = x;
        }
        else
        {
            // Scales beyond +-2^62 saturate (they over/underflow any extended value) rather than being invalid.
            var ignored = FpExceptions.None;
            var n = y.Class == FpClass.Zero ? 0
                : y.Exponent >= 62 ? (y.Sign ? -70000 : 70000)
                : SoftFloat.ToInteger(y, 64, RoundingMode.TowardZero, ref ignored);
            n = Math.Clamp(n, -70000, 70000);
            result = SoftFloat.Round(x.Sign, x.Exponent + (int)n, (UInt128)x.Significand << 64, FpFormat.Extended,
                FpEnv.FromFcw(s.Fcw).Rounding, false, FpEnv.FromFcw(s.Fcw).Masks, ref flags);
        }

        flags = SoftFloat.DenormalPrecedence(flags, x, y);
        if (!Raise(s, flags))
        {
            WriteSt(s, 0, result, flags);
        }
    }

    private static void Fxtract(FpuState s)
    {
        if (s.IsEmpty(0))
        {
            if (StackUnderflow(s))
            {
                WriteSt(s, 0, FpValue.DefaultNaN, FpExceptions.None);
                Push(s, Float80.Indefinite);
            }

            return;
        }

        var flags = FpExceptions.None;
        var x = UnpackSt(s, 0, ref flags);
        FpValue exponent;
        FpValue significand;
        if (X87PropagateNaN(x, x, ref flags, out var nan))
        {
            exponent = nan;
            significand = nan;
        }
        else if (x.Class == FpClass.Zero)
        {
            flags |= FpExceptions.DivideByZero;
            exponent = FpValue.Infinity(true);
            significand = x;
        }
        else if (x.Class == FpClass.Infinity)
        {
            exponent = FpValue.Infinity(false);
            significand = x;
        }
        else
        {
            exponent = SoftFloat.FromInteger(x.Exponent);
            significand = x with { Exponent = 0 };
        }

        if (Raise(s, flags))
        {
            return;
        }

        WriteSt(s, 0, exponent, FpExceptions.None);
        Push(s, SoftFloat.PackExtended(significand));
    }

    /// <summary>FPREM/FPREM1 (SDM Vol. 2A): exact remainder when the exponent difference is below 64 (C2 = 0,
    /// C0/C3/C1 = quotient bits 2/1/0); otherwise a partial reduction by 2^(d - N) with N = 32 + d mod 32 and
    /// C2 = 1. The partial-reduction N is implementation-specific on real CPUs and not verified against one.</summary>
    private static void Fprem(FpuState s, bool ieee)
    {
        if (s.IsEmpty(0) || s.IsEmpty(1))
        {
            if (StackUnderflow(s))
            {
                WriteSt(s, 0, FpValue.DefaultNaN, FpExceptions.None);
            }

            return;
        }

        var flags = FpExceptions.None;
        var x = UnpackSt(s, 0, ref flags);
        var y = UnpackSt(s, 1, ref flags);
        if (X87PropagateNaN(x, y, ref flags, out var nan))
        {
            if (!Raise(s, SoftFloat.DenormalPrecedence(flags, x, y)))
            {
                WriteSt(s, 0, nan, flags);
            }

            return;
        }

        if (x.Class == FpClass.Infinity || y.Class == FpClass.Zero)
        {
            flags = (flags | FpExceptions.Invalid) & ~FpExceptions.Denormal;
            if (!Raise(s, flags))
            {
                WriteSt(s, 0, FpValue.DefaultNaN, flags);
            }

            return;
        }

        if (x.Class == FpClass.Zero || y.Class == FpClass.Infinity)
        {
            Raise(s, flags);
            SetConditionCodes(s, 0);
            return;
        }

        var d = x.Exponent - y.Exponent;
        if (d >= 64)
        {
            var n = 32 + (d % 32);
            var shift = d - n;

            // q = trunc(x / (y * 2^shift)); x -= q * y * 2^shift, computed on integers scaled by 2^(y.Exponent-63+shift).
            var a = new System.Numerics.BigInteger(x.Significand) << (x.Exponent - y.Exponent - shift);
            var b = new System.Numerics.BigInteger(y.Significand);
            var rem = a % b;
            var value = FromScaled(rem, y.Exponent - 63 + shift, x.Sign);
            if (!Raise(s, flags))
            {
                WriteSt(s, 0, value, flags);
            }

            SetConditionCodes(s, FpuState.FswC2);
            return;
        }

        if (d < 0 && !ieee)
        {
            // |x| < |y|: quotient 0, remainder x.
            Raise(s, flags);
            SetConditionCodes(s, 0);
            return;
        }

        var scale = Math.Min(x.Exponent, y.Exponent) - 63;
        var ax = new System.Numerics.BigInteger(x.Significand) << (x.Exponent - 63 - scale);
        var by = new System.Numerics.BigInteger(y.Significand) << (y.Exponent - 63 - scale);
        var q = System.Numerics.BigInteger.DivRem(ax, by, out var r);
        if (ieee)
        {
            var twice = r * 2;
            if (twice > by || (twice == by && !q.IsEven))
            {
                q += 1;
                r -= by;
            }
        }

        var result = r.IsZero ? FpValue.Zero(x.Sign) : FromScaled(System.Numerics.BigInteger.Abs(r), scale,
            r.Sign < 0 ? !x.Sign : x.Sign);
        if (!Raise(s, flags))
        {
            WriteSt(s, 0, result, flags);
        }

        var qb = (ulong)(q & 7);
        ushort codes = 0;
        codes |= (qb & 4) != 0 ? FpuState.FswC0 : (ushort)0;
        codes |= (qb & 2) != 0 ? FpuState.FswC3 : (ushort)0;
        codes |= (qb & 1) != 0 ? FpuState.FswC1 : (ushort)0;
        SetConditionCodes(s, codes);
    }

    /// <summary>An exact value magnitude * 2^scale (magnitude below 2^64) as an unpacked value.</summary>
    private static FpValue FromScaled(System.Numerics.BigInteger magnitude, int scale, bool sign)
    {
        if (magnitude.IsZero)
        {
            return FpValue.Zero(sign);
        }

        var bits = (int)magnitude.GetBitLength();
        var m = (ulong)(magnitude << (64 - bits));
        return new FpValue(FpClass.Finite, sign, scale + bits - 1, m);
    }

    private static void X87Transcendental(FpuState s, Mnemonic m)
    {
        var twoOperands = m is Mnemonic.Fpatan or Mnemonic.Fyl2x or Mnemonic.Fyl2xp1;
        if (s.IsEmpty(0) || (twoOperands && s.IsEmpty(1)))
        {
            if (StackUnderflow(s))
            {
                WriteSt(s, twoOperands ? 1 : 0, FpValue.DefaultNaN, FpExceptions.None);
                if (twoOperands)
                {
                    Pop(s);
                }
                else if (m is Mnemonic.Fsincos or Mnemonic.Fptan)
                {
                    Push(s, Float80.Indefinite);
                }
            }

            return;
        }

        var flags = FpExceptions.None;
        var x = UnpackSt(s, 0, ref flags);
        var y = twoOperands ? UnpackSt(s, 1, ref flags) : x;
        if (X87PropagateNaN(x, y, ref flags, out var nan))
        {
            if (!Raise(s, SoftFloat.DenormalPrecedence(flags, x, y)))
            {
                WriteSt(s, twoOperands ? 1 : 0, nan, flags);
                if (twoOperands)
                {
                    Pop(s);
                }
                else if (m is Mnemonic.Fsincos or Mnemonic.Fptan)
                {
                    Push(s, SoftFloat.PackExtended(nan));
                }
            }

            return;
        }

        if (m is Mnemonic.Fsin or Mnemonic.Fcos or Mnemonic.Fsincos or Mnemonic.Fptan)
        {
            // Out of range (|x| >= 2^63): C2 = 1 and the operand is left alone.
            if (x.Class == FpClass.Finite && x.Exponent >= 63)
            {
                SetConditionCodes(s, FpuState.FswC2);
                return;
            }

            if (x.Class == FpClass.Infinity)
            {
                flags |= FpExceptions.Invalid;
                if (!Raise(s, flags))
                {
                    WriteSt(s, 0, FpValue.DefaultNaN, flags);
                    if (m is Mnemonic.Fsincos or Mnemonic.Fptan)
                    {
                        Push(s, Float80.Indefinite);
                    }
                }

                return;
            }
        }

        if (m == Mnemonic.F2xm1 && x.Class == FpClass.Finite && x.Exponent >= 0
            && !(x.Exponent == 0 && x.Significand == Float80.IntegerBit))
        {
            // Outside [-1, 1] the result is undefined; the host CPU leaves the operand and reports PE.
            Raise(s, FpExceptions.Precision | (flags & FpExceptions.Denormal));
            return;
        }

        var env = FpEnv.FromFcw(s.Fcw);
        FpValue v0;
        var v1 = FpValue.Zero(false);
        var exact = false;
        switch (m)
        {
            case Mnemonic.Fsin:
            case Mnemonic.Fptan:
            case Mnemonic.Fsincos:
            case Mnemonic.Fcos:
            {
                var tiny = x.Class == FpClass.Zero || (x.Class == FpClass.Finite && x.Exponent < -40);
                var (reduced, quadrant) = tiny ? (0.0, 0) : ReduceByHalfPi(x);
                var sinR = Math.Sin(reduced);
                var cosR = Math.Cos(reduced);
                var sinX = quadrant switch { 0 => sinR, 1 => cosR, 2 => -sinR, _ => -cosR };
                var cosX = quadrant switch { 0 => cosR, 1 => -sinR, 2 => -cosR, _ => sinR };
                var tanX = (quadrant & 1) == 0 ? Math.Tan(reduced) : -cosR / sinR;

                // sin x = tan x = x and cos x = 1 to far beyond 64 bits when |x| < 2^-40.
                var sin = tiny ? x : FromDouble(sinX, ref flags);
                // cos x = 1 - x^2/2 lies just below 1: directed rounding down or toward zero gives 1 - 2^-64.
                var cosBelowOne = x.Class == FpClass.Finite
                    && FpEnv.FromFcw(s.Fcw).Rounding is RoundingMode.Down or RoundingMode.TowardZero;
                var cos = !tiny ? FromDouble(cosX, ref flags)
                    : cosBelowOne ? new FpValue(FpClass.Finite, false, -1, ulong.MaxValue) : FpValue.FromOne();
                if (tiny && x.Class == FpClass.Finite && m is Mnemonic.Fcos or Mnemonic.Fsincos && !cosBelowOne)
                {
                    flags |= FpExceptions.RoundedUp;
                }
                exact = x.Class == FpClass.Zero;
                v0 = m switch
                {
                    Mnemonic.Fsin or Mnemonic.Fsincos => sin,
                    Mnemonic.Fcos => cos,
                    _ => tiny ? x : FromDouble(tanX, ref flags),
                };
                v1 = m == Mnemonic.Fsincos ? cos : FpValue.FromOne();
                if (tiny && x.Class == FpClass.Finite && x.Exponent < -16382 && m != Mnemonic.Fcos)
                {
                    flags |= FpExceptions.Underflow; // a denormal result
                }

                break;
            }

            case Mnemonic.F2xm1:
                // Exact for the integral inputs -1, 0 (sign kept) and 1.
                exact = x.Class is FpClass.Zero or FpClass.Infinity || (x.Class == FpClass.Finite && x.Exponent >= -1
                    && SoftFloat.RoundToIntegral(x, RoundingMode.TowardZero, ref t_ignoredFlags) == x);
                v0 = x.Class == FpClass.Zero ? x : x.Class == FpClass.Infinity
                    ? (x.Sign ? FromDouble(-1.0, ref flags) : x)
                    : x.Class == FpClass.Finite && x.Exponent < -40
                        ? SoftFloat.Multiply(x, Ln2, FpFormat.Extended, env, ref flags) // 2^x - 1 ~ x ln 2
                        : FromDouble(Expm1(ToDouble(x) * Math.Log(2)), ref flags);
                break;
            case Mnemonic.Fpatan:
            {
                // atan2 is scale-invariant: bring both exponents near 0 so tiny or huge operands survive doubles.
                var shift = x.Class == FpClass.Finite && y.Class == FpClass.Finite ? Math.Max(x.Exponent, y.Exponent)
                    : x.Class == FpClass.Finite ? x.Exponent
                    : y.Class == FpClass.Finite ? y.Exponent : 0;
                var dx = ToDouble(x.Class == FpClass.Finite ? x with { Exponent = x.Exponent - shift } : x);
                var dy = ToDouble(y.Class == FpClass.Finite ? y with { Exponent = y.Exponent - shift } : y);
                exact = (y.Class == FpClass.Zero && !x.Sign)
                    || (x.Class == FpClass.Infinity && !x.Sign && y.Class != FpClass.Infinity);
                v0 = FromDouble(Math.Atan2(dy, dx), ref flags);
                if (v0.Class == FpClass.Zero && y.Class != FpClass.Zero)
                {
                    // The true result is below double range: approximate y/x in extended precision.
                    v0 = SoftFloat.Divide(y, x, FpFormat.Extended, env, ref flags);
                }

                break;
            }

            default:
            {
                // FYL2X: y * log2(x); FYL2XP1: y * log2(x + 1). The logarithm comes from doubles, the product is
                // rounded in extended precision so tiny or huge y keeps its range.
                var dx = ToDouble(x);
                if (m == Mnemonic.Fyl2x)
                {
                    if (x.Class == FpClass.Zero && y.Class != FpClass.Zero && y.Class != FpClass.Infinity)
                    {
                        flags |= FpExceptions.DivideByZero;
                    }
                    else if ((x.Sign && x.Class != FpClass.Zero) || (x.Class == FpClass.Zero && y.Class == FpClass.Zero)
                        || (x.Class == FpClass.Finite && x.Exponent == 0 && x.Significand == Float80.IntegerBit
                            && y.Class == FpClass.Infinity))
                    {
                        flags |= FpExceptions.Invalid;
                    }
                }

                // log2 from exponent and significand so denormal and huge x keep their range.
                double log;
                if (m == Mnemonic.Fyl2xp1)
                {
                    log = Log1p(dx) / Math.Log(2);
                }
                else if (x.Class == FpClass.Finite && x.Exponent is -1 or 0)
                {
                    // Near 1: log2(x) = log1p(x - 1) / ln 2 with x - 1 formed exactly in extended precision.
                    var ignored = FpExceptions.None;
                    var minusOne = SoftFloat.Add(x, FpValue.FromOne().Negated(), FpFormat.Extended, env, ref ignored);
                    log = Log1p(ToDouble(minusOne)) / Math.Log(2);
                }
                else
                {
                    log = x.Class != FpClass.Finite ? Math.Log2(dx)
                        : x.Exponent + Math.Log2(x.Significand / 9223372036854775808.0);
                }
                if ((flags & FpExceptions.Invalid) != 0)
                {
                    v0 = FpValue.DefaultNaN;
                }
                else if ((flags & FpExceptions.DivideByZero) != 0)
                {
                    v0 = FpValue.Infinity(!y.Sign);
                }
                else
                {
                    var logValue = FromDouble(log, ref flags);
                    exact = logValue.Class == FpClass.Zero || y.Class == FpClass.Zero;
                    v0 = logValue.Class == FpClass.Infinity && y.Class == FpClass.Zero
                        ? FpValue.DefaultNaN
                        : SoftFloat.Multiply(y, logValue, FpFormat.Extended, env, ref flags);
                }

                break;
            }
        }

        if (!exact && v0.Class == FpClass.Finite)
        {
            flags |= FpExceptions.Precision;
        }
        else if (!exact && v0.Class == FpClass.Zero)
        {
            flags |= FpExceptions.Underflow | FpExceptions.Precision;
        }

        flags = SoftFloat.DenormalPrecedence(flags, x, y);
        if (Raise(s, flags))
        {
            return;
        }

        s.Fsw = (ushort)(s.Fsw & ~(FpuState.FswC1 | FpuState.FswC2));
        if (twoOperands)
        {
            WriteSt(s, 1, v0, flags);
            Pop(s);
        }
        else if (m == Mnemonic.Fsincos)
        {
            WriteSt(s, 0, v0, flags);
            Push(s, SoftFloat.PackExtended(v1));
        }
        else if (m == Mnemonic.Fptan)
        {
            WriteSt(s, 0, v0, flags);
            Push(s, Float80.One);
        }
        else
        {
            WriteSt(s, 0, v0, flags);
        }
    }

    [ThreadStatic]
    private static FpExceptions t_ignoredFlags;

    /// <summary>The 66-bit approximation of pi the x87 uses for argument reduction (SDM Vol. 1 8.3.10):
    /// pi = 0xC90FDAA22168C234 C... x 2^-62, truncated to 66 significant bits.</summary>
    private static readonly System.Numerics.BigInteger s_pi66 =
        (new System.Numerics.BigInteger(0xC90F_DAA2_2168_C234UL) << 2) | 3;

    /// <summary>x = q * (pi66 / 2) + r with |r| &lt;= pi/4, computed exactly on integers scaled by 2^130; returns r as
    /// a double and q mod 4. Matches the hardware's reduction for large arguments.</summary>
    private static (double Reduced, int Quadrant) ReduceByHalfPi(FpValue x)
    {
        const int Scale = 130;
        var numerator = new System.Numerics.BigInteger(x.Significand);
        var shift = Scale + x.Exponent - 63;
        numerator = shift >= 0 ? numerator << shift : numerator >> -shift;
        var halfPi = s_pi66 << (Scale - 65); // pi66 / 2 = pi66int * 2^-65
        var q = System.Numerics.BigInteger.DivRem(numerator, halfPi, out var r);
        if (r * 2 > halfPi)
        {
            q += 1;
            r -= halfPi;
        }

        var reduced = Math.ScaleB((double)r, -Scale);
        var quadrant = (int)(q & 3);
        if (x.Sign)
        {
            reduced = -reduced;
            quadrant = (4 - quadrant) & 3;
        }

        return (reduced, quadrant);
    }

    /// <summary>e^y - 1 without cancellation (Kahan's trick; .NET has no expm1).</summary>
    private static double Expm1(double y)
    {
        var u = Math.Exp(y);
        if (u == 1.0)
        {
            return y;
        }

        var um1 = u - 1.0;
        return um1 == -1.0 ? -1.0 : um1 * y / Math.Log(u);
    }

    /// <summary>ln(1 + d) without cancellation (Kahan's trick; .NET has no log1p).</summary>
    private static double Log1p(double d)
    {
        var u = 1.0 + d;
        return u == 1.0 ? d : Math.Log(u) * d / (u - 1.0);
    }

    /// <summary>ln 2 rounded to 64 bits (the FLDLN2 constant).</summary>
    private static FpValue Ln2 => new(FpClass.Finite, false, -1, 0xB172_17F7_D1CF_79AC);

    private static double ToDouble(FpValue v)
    {
        var flags = FpExceptions.None;
        var env = new FpEnv(RoundingMode.Nearest, (FpExceptions)0x3F, false);
        return BitConverter.UInt64BitsToDouble(SoftFloat.PackDouble(SoftFloat.RoundTo(v, FpFormat.Double, env, ref flags)));
    }

    private static FpValue FromDouble(double d, ref FpExceptions flags)
    {
        if (double.IsNaN(d))
        {
            flags |= FpExceptions.Invalid;
            return FpValue.DefaultNaN;
        }

        var ignored = FpExceptions.None;
        return SoftFloat.UnpackDouble(BitConverter.DoubleToUInt64Bits(d), false, ref ignored);
    }

    /// <summary>The x87 constants with their correctly rounded 64-bit significands for round-to-nearest, and which
    /// neighbour directed rounding picks (SDM Vol. 1 8.3.8: constants are rounded per FCW.RC).</summary>
    private static void PushConstant(FpuState s, Mnemonic m)
    {
        var rc = FpEnv.FromFcw(s.Fcw).Rounding;
        Float80 value;
        switch (m)
        {
            case Mnemonic.Fld1:
                value = Float80.One;
                break;
            case Mnemonic.Fldz:
                value = Float80.Zero;
                break;
            default:
                // (nearest significand, exponent, nearest is above the true value)
                var (sig, exp, nearestAbove) = m switch
                {
                    Mnemonic.Fldpi => (0xC90F_DAA2_2168_C235UL, (ushort)0x4000, true),
                    Mnemonic.Fldl2e => (0xB8AA_3B29_5C17_F0BCUL, (ushort)0x3FFF, true),
                    Mnemonic.Fldl2t => (0xD49A_784B_CD1B_8AFEUL, (ushort)0x4000, false),
                    Mnemonic.Fldlg2 => (0x9A20_9A84_FBCF_F799UL, (ushort)0x3FFD, true),
                    _ => (0xB172_17F7_D1CF_79ACUL, (ushort)0x3FFE, true),
                };
                if (nearestAbove && rc is RoundingMode.Down or RoundingMode.TowardZero)
                {
                    sig--;
                }
                else if (!nearestAbove && rc == RoundingMode.Up)
                {
                    sig++;
                }

                value = new Float80(sig, exp);
                break;
        }

        s.Fsw = (ushort)(s.Fsw & ~FpuState.FswC1);
        Push(s, value);
    }

    private static void Fxch(in Instruction i, FpuState s)
    {
        var other = i.OpCount == 2 ? StIndex(i.Op1Register) : 1;
        if (s.IsEmpty(0) || s.IsEmpty(other))
        {
            if (!StackUnderflow(s))
            {
                return;
            }

            // Masked: empty registers take the indefinite before the exchange.
            if (s.IsEmpty(0))
            {
                s.St(0) = Float80.Indefinite;
                s.SetValid(0);
            }

            if (s.IsEmpty(other))
            {
                s.St(other) = Float80.Indefinite;
                s.SetValid(other);
            }
        }
        else
        {
            s.Fsw = (ushort)(s.Fsw & ~FpuState.FswC1);
        }

        (s.St(0), s.St(other)) = (s.St(other), s.St(0));
    }

    private static void Fcmov(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var src = StIndex(i.Op1Register);
        if (s.IsEmpty(0) || s.IsEmpty(src))
        {
            if (StackUnderflow(s))
            {
                WriteSt(s, 0, FpValue.DefaultNaN, FpExceptions.None);
            }

            return;
        }

        var f = a.Rflags;
        var cf = (f & FlagCf) != 0;
        var zf = (f & FlagZf) != 0;
        var pf = (f & FlagPf) != 0;
        var take = i.Mnemonic switch
        {
            Mnemonic.Fcmovb => cf,
            Mnemonic.Fcmove => zf,
            Mnemonic.Fcmovbe => cf || zf,
            Mnemonic.Fcmovu => pf,
            Mnemonic.Fcmovnb => !cf,
            Mnemonic.Fcmovne => !zf,
            Mnemonic.Fcmovnbe => !cf && !zf,
            _ => !pf,
        };
        s.Fsw = (ushort)(s.Fsw & ~FpuState.FswC1);
        if (take)
        {
            s.St(0) = s.St(src);
        }
    }

    private static SimdOutcome StoreWord(in Instruction i, ISimdOperandAccess a, ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, value);
        return a.WriteMemory(a.GetMemoryAddress(in i), b) ? SimdOutcome.Ok : SimdOutcome.MemoryFaulted;
    }

    private static bool IsRealOrV86(ISimdOperandAccess a) =>
        (a.Cr0 & 1) == 0 || (a.Rflags & (1UL << 17)) != 0; // CR0.PE, RFLAGS.VM

    /// <summary>FSTENV/FSAVE in the four layouts of SDM Vol. 1 Figures 8-9 to 8-12 (16/32-bit operand size,
    /// protected/real mode); FSAVE then appends ST0-ST7 and reinitializes. FSTENV masks all exceptions afterwards.
    /// Reserved upper halves are stored as 0xFFFF like the CPU does (checked on the host).</summary>
    private static SimdOutcome StoreEnvironment(in Instruction i, FpuState s, ISimdOperandAccess a, bool save)
    {
        var wide = i.Code is Code.Fnstenv_m28byte or Code.Fstenv_m28byte or Code.Fnsave_m108byte
            or Code.Fsave_m108byte;
        var envSize = wide ? 28 : 14;
        Span<byte> b = stackalloc byte[108];
        b.Clear();
        WriteEnvironment(b, s, wide, IsRealOrV86(a));
        var total = envSize;
        if (save)
        {
            for (var k = 0; k < 8; k++)
            {
                var r = s.St(k);
                BinaryPrimitives.WriteUInt64LittleEndian(b[(envSize + (10 * k))..], r.Significand);
                BinaryPrimitives.WriteUInt16LittleEndian(b[(envSize + (10 * k) + 8)..], r.SignExponent);
            }

            total += 80;
        }

        if (!a.WriteMemory(a.GetMemoryAddress(in i), b[..total]))
        {
            return SimdOutcome.MemoryFaulted;
        }

        if (save)
        {
            s.Fninit();
        }
        else
        {
            s.Fcw |= 0x3F;
            s.UpdateErrorSummary();
        }

        return SimdOutcome.Ok;
    }

    private static void WriteEnvironment(Span<byte> b, FpuState s, bool wide, bool real)
    {
        var tags = s.FullTagWord();
        var fop = (uint)(s.Fop & 0x7FF);
        if (wide)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b, 0xFFFF_0000u | s.Fcw);
            BinaryPrimitives.WriteUInt32LittleEndian(b[4..], 0xFFFF_0000u | s.Fsw);
            BinaryPrimitives.WriteUInt32LittleEndian(b[8..], 0xFFFF_0000u | tags);
            if (real)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(b[12..], 0xFFFF_0000u | (ushort)s.Fip);
                BinaryPrimitives.WriteUInt32LittleEndian(b[16..], (uint)((s.Fip >> 16) & 0xFFFF) << 12 | fop);
                BinaryPrimitives.WriteUInt32LittleEndian(b[20..], 0xFFFF_0000u | (ushort)s.Fdp);
                BinaryPrimitives.WriteUInt32LittleEndian(b[24..], (uint)((s.Fdp >> 16) & 0xFFFF) << 12);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(b[12..], (uint)s.Fip);
                BinaryPrimitives.WriteUInt32LittleEndian(b[16..], (fop << 16) | s.Fcs);
                BinaryPrimitives.WriteUInt32LittleEndian(b[20..], (uint)s.Fdp);
                BinaryPrimitives.WriteUInt32LittleEndian(b[24..], 0xFFFF_0000u | s.Fds);
            }
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(b, s.Fcw);
            BinaryPrimitives.WriteUInt16LittleEndian(b[2..], s.Fsw);
            BinaryPrimitives.WriteUInt16LittleEndian(b[4..], tags);
            BinaryPrimitives.WriteUInt16LittleEndian(b[6..], (ushort)s.Fip);
            if (real)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(b[8..], (ushort)((((s.Fip >> 16) & 0xF) << 12) | fop));
                BinaryPrimitives.WriteUInt16LittleEndian(b[10..], (ushort)s.Fdp);
                BinaryPrimitives.WriteUInt16LittleEndian(b[12..], (ushort)(((s.Fdp >> 16) & 0xF) << 12));
            }
            else
            {
                BinaryPrimitives.WriteUInt16LittleEndian(b[8..], s.Fcs);
                BinaryPrimitives.WriteUInt16LittleEndian(b[10..], (ushort)s.Fdp);
                BinaryPrimitives.WriteUInt16LittleEndian(b[12..], s.Fds);
            }
        }
    }

    private static SimdOutcome LoadEnvironment(in Instruction i, FpuState s, ISimdOperandAccess a, bool restore)
    {
        var wide = i.Code is Code.Fldenv_m28byte or Code.Frstor_m108byte;
        var envSize = wide ? 28 : 14;
        var total = envSize + (restore ? 80 : 0);
        Span<byte> b = stackalloc byte[108];
        if (!a.ReadMemory(a.GetMemoryAddress(in i), b[..total]))
        {
            return SimdOutcome.MemoryFaulted;
        }

        var real = IsRealOrV86(a);
        var step = wide ? 4 : 2;
        s.Fcw = (ushort)((BinaryPrimitives.ReadUInt16LittleEndian(b) & 0x1F3F) | 0x40);
        s.Fsw = BinaryPrimitives.ReadUInt16LittleEndian(b[step..]);
        var tags = BinaryPrimitives.ReadUInt16LittleEndian(b[(2 * step)..]);
        if (wide)
        {
            if (real)
            {
                s.Fip = BinaryPrimitives.ReadUInt16LittleEndian(b[12..])
                    | ((ulong)(BinaryPrimitives.ReadUInt32LittleEndian(b[16..]) >> 12) << 16);
                s.Fop = (ushort)(BinaryPrimitives.ReadUInt32LittleEndian(b[16..]) & 0x7FF);
                s.Fdp = BinaryPrimitives.ReadUInt16LittleEndian(b[20..])
                    | ((ulong)(BinaryPrimitives.ReadUInt32LittleEndian(b[24..]) >> 12) << 16);
            }
            else
            {
                s.Fip = BinaryPrimitives.ReadUInt32LittleEndian(b[12..]);
                s.Fcs = BinaryPrimitives.ReadUInt16LittleEndian(b[16..]);
                s.Fop = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(b[18..]) & 0x7FF);
                s.Fdp = BinaryPrimitives.ReadUInt32LittleEndian(b[20..]);
                s.Fds = BinaryPrimitives.ReadUInt16LittleEndian(b[24..]);
            }
        }
        else
        {
            s.Fip = BinaryPrimitives.ReadUInt16LittleEndian(b[6..]);
            if (real)
            {
                var w = BinaryPrimitives.ReadUInt16LittleEndian(b[8..]);
                s.Fip |= (ulong)(w >> 12) << 16;
                s.Fop = (ushort)(w & 0x7FF);
                s.Fdp = BinaryPrimitives.ReadUInt16LittleEndian(b[10..])
                    | ((ulong)(BinaryPrimitives.ReadUInt16LittleEndian(b[12..]) >> 12) << 16);
            }
            else
            {
                s.Fcs = BinaryPrimitives.ReadUInt16LittleEndian(b[8..]);
                s.Fdp = BinaryPrimitives.ReadUInt16LittleEndian(b[10..]);
                s.Fds = BinaryPrimitives.ReadUInt16LittleEndian(b[12..]);
            }
        }

        if (restore)
        {
            for (var k = 0; k < 8; k++)
            {
                s.St(k) = new Float80(
                    BinaryPrimitives.ReadUInt64LittleEndian(b[(envSize + (10 * k))..]),
                    BinaryPrimitives.ReadUInt16LittleEndian(b[(envSize + (10 * k) + 8)..]));
            }
        }

        s.LoadFullTagWord(tags);
        s.UpdateErrorSummary();
        return SimdOutcome.Ok;
    }
}
