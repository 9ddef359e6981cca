using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Iced.Intel;

namespace Ringvisor.Emulator.Fpu;

/// <summary>
/// SSE/SSE2/SSE3 floating point: arithmetic, MIN/MAX, CMP, (U)COMIS, conversions, RCP/RSQRT and the SSE3
/// horizontal forms. All IEEE results and MXCSR flags come from <see cref="SoftFloat"/> (exact, every rounding
/// mode, DAZ/FTZ). NaN rules are SSE's (SDM Vol. 1 Table 4-7 / 11.5.2.2: the first source NaN wins, quieted;
/// invalid operations give the negative default QNaN). On an unmasked exception MXCSR flags are set, the
/// destination is left unchanged and #XM (or #UD when CR4.OSXMMEXCPT = 0) is returned.
/// </summary>
public static partial class SimdExecutor
{
    private static Mnemonic[] FloatMnemonics =>
    [
        Mnemonic.Addps, Mnemonic.Addss, Mnemonic.Addpd, Mnemonic.Addsd, Mnemonic.Subps, Mnemonic.Subss,
        Mnemonic.Subpd, Mnemonic.Subsd, Mnemonic.Mulps, Mnemonic.Mulss, Mnemonic.Mulpd, Mnemonic.Mulsd,
        Mnemonic.Divps, Mnemonic.Divss, Mnemonic.Divpd, Mnemonic.Divsd, Mnemonic.Sqrtps, Mnemonic.Sqrtss,
        Mnemonic.Sqrtpd, Mnemonic.Sqrtsd, Mnemonic.Minps, Mnemonic.Minss, Mnemonic.Minpd, Mnemonic.Minsd,
        Mnemonic.Maxps, Mnemonic.Maxss, Mnemonic.Maxpd, Mnemonic.Maxsd, Mnemonic.Cmpps, Mnemonic.Cmpss,
        Mnemonic.Cmppd, Mnemonic.Cmpsd, Mnemonic.Comiss, Mnemonic.Comisd, Mnemonic.Ucomiss, Mnemonic.Ucomisd,
        Mnemonic.Addsubps, Mnemonic.Addsubpd, Mnemonic.Haddps, Mnemonic.Haddpd, Mnemonic.Hsubps, Mnemonic.Hsubpd,
        Mnemonic.Rcpps, Mnemonic.Rcpss, Mnemonic.Rsqrtps, Mnemonic.Rsqrtss, Mnemonic.Cvtsi2ss, Mnemonic.Cvtsi2sd,
        Mnemonic.Cvtss2si, Mnemonic.Cvttss2si, Mnemonic.Cvtsd2si, Mnemonic.Cvttsd2si, Mnemonic.Cvtss2sd,
        Mnemonic.Cvtsd2ss, Mnemonic.Cvtps2pd, Mnemonic.Cvtpd2ps, Mnemonic.Cvtdq2ps, Mnemonic.Cvtps2dq,
        Mnemonic.Cvttps2dq, Mnemonic.Cvtdq2pd, Mnemonic.Cvtpd2dq, Mnemonic.Cvttpd2dq, Mnemonic.Cvtpi2ps,
        Mnemonic.Cvtps2pi, Mnemonic.Cvttps2pi, Mnemonic.Cvtpi2pd, Mnemonic.Cvtpd2pi, Mnemonic.Cvttpd2pi,
    ];

    // EFLAGS bits written by (U)COMIS (SDM Vol. 2A COMISS).
    private const ulong FlagCf = 1UL << 0;
    private const ulong FlagPf = 1UL << 2;
    private const ulong FlagAf = 1UL << 4;
    private const ulong FlagZf = 1UL << 6;
    private const ulong FlagSf = 1UL << 7;
    private const ulong FlagOf = 1UL << 11;

    private static SimdOutcome ExecuteFloat(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var m = i.Mnemonic;
        switch (m)
        {
            case Mnemonic.Comiss:
            case Mnemonic.Comisd:
            case Mnemonic.Ucomiss:
            case Mnemonic.Ucomisd:
                return CompareToFlags(in i, s, a);
            case Mnemonic.Rcpps:
            case Mnemonic.Rcpss:
            case Mnemonic.Rsqrtps:
            case Mnemonic.Rsqrtss:
                return Approximate(in i, s, a);
            case Mnemonic.Cvtsi2ss:
            case Mnemonic.Cvtsi2sd:
            case Mnemonic.Cvtss2si:
            case Mnemonic.Cvttss2si:
            case Mnemonic.Cvtsd2si:
            case Mnemonic.Cvttsd2si:
            case Mnemonic.Cvtss2sd:
            case Mnemonic.Cvtsd2ss:
            case Mnemonic.Cvtps2pd:
            case Mnemonic.Cvtpd2ps:
            case Mnemonic.Cvtdq2ps:
            case Mnemonic.Cvtps2dq:
            case Mnemonic.Cvttps2dq:
            case Mnemonic.Cvtdq2pd:
            case Mnemonic.Cvtpd2dq:
            case Mnemonic.Cvttpd2dq:
            case Mnemonic.Cvtpi2ps:
            case Mnemonic.Cvtps2pi:
            case Mnemonic.Cvttps2pi:
            case Mnemonic.Cvtpi2pd:
            case Mnemonic.Cvtpd2pi:
            case Mnemonic.Cvttpd2pi:
                return Convert(in i, s, a);
        }

        var r = LoadPair(in i, s, a, out var dst, out var src);
        if (r != SimdOutcome.Ok)
        {
            return r;
        }

        var dbl = m is Mnemonic.Addpd or Mnemonic.Addsd or Mnemonic.Subpd or Mnemonic.Subsd or Mnemonic.Mulpd
            or Mnemonic.Mulsd or Mnemonic.Divpd or Mnemonic.Divsd or Mnemonic.Sqrtpd or Mnemonic.Sqrtsd
            or Mnemonic.Minpd or Mnemonic.Minsd or Mnemonic.Maxpd or Mnemonic.Maxsd or Mnemonic.Cmppd
            or Mnemonic.Cmpsd or Mnemonic.Addsubpd or Mnemonic.Haddpd or Mnemonic.Hsubpd;
        var scalar = m is Mnemonic.Addss or Mnemonic.Addsd or Mnemonic.Subss or Mnemonic.Subsd or Mnemonic.Mulss
            or Mnemonic.Mulsd or Mnemonic.Divss or Mnemonic.Divsd or Mnemonic.Sqrtss or Mnemonic.Sqrtsd
            or Mnemonic.Minss or Mnemonic.Minsd or Mnemonic.Maxss or Mnemonic.Maxsd or Mnemonic.Cmpss
            or Mnemonic.Cmpsd;
        var lanes = scalar ? 1 : dbl ? 2 : 4;
        var env = FpEnv.FromMxcsr(s.Mxcsr);
        var daz = (s.Mxcsr & MxcsrDaz) != 0;
        var flags = FpExceptions.None;
        var result = dst;
        for (var k = 0; k < lanes; k++)
        {
            ulong bits;
            var laneFlags = FpExceptions.None;
            FpValue x;
            FpValue y;
            if (m is Mnemonic.Haddps or Mnemonic.Hsubps or Mnemonic.Haddpd or Mnemonic.Hsubpd)
            {
                // Horizontal: result lane k takes the pair (2j, 2j+1) of dst for the low half, of src for the high.
                var half = lanes / 2;
                var from = k < half ? dst : src;
                var j = k < half ? k : k - half;
                x = GetLane(from, 2 * j, dbl, daz, ref laneFlags);
                y = GetLane(from, (2 * j) + 1, dbl, daz, ref laneFlags);
                var sub = m is Mnemonic.Hsubps or Mnemonic.Hsubpd;
                bits = Pack(Arith(sub ? FloatOp.Sub : FloatOp.Add, x, y, dbl, env, ref laneFlags), dbl);
            }
            else
            {
                var isSqrt = m is Mnemonic.Sqrtps or Mnemonic.Sqrtss or Mnemonic.Sqrtpd or Mnemonic.Sqrtsd;
                x = isSqrt ? default : GetLane(dst, k, dbl, daz, ref laneFlags);
                y = GetLane(src, k, dbl, daz, ref laneFlags);
                bits = m switch
                {
                    Mnemonic.Cmpps or Mnemonic.Cmpss or Mnemonic.Cmppd or Mnemonic.Cmpsd =>
                        ComparePredicate(x, y, i.Immediate8 & 7, ref laneFlags) ? ulong.MaxValue : 0,
                    Mnemonic.Minps or Mnemonic.Minss or Mnemonic.Minpd or Mnemonic.Minsd =>
                        Pack(MinMax(x, y, max: false, ref laneFlags), dbl),
                    Mnemonic.Maxps or Mnemonic.Maxss or Mnemonic.Maxpd or Mnemonic.Maxsd =>
                        Pack(MinMax(x, y, max: true, ref laneFlags), dbl),
                    _ => Pack(Arith(OpOf(m, k), x, y, dbl, env, ref laneFlags), dbl),
                };
            }

            flags |= SoftFloat.DenormalPrecedence(laneFlags, x, y);
            result = SetLane(result, k, dbl, bits);
        }

        return CommitFloat(in i, s, a, result, flags);
    }

    private enum FloatOp
    {
        Add,
        Sub,
        Mul,
        Div,
        Sqrt,
    }

    private static FloatOp OpOf(Mnemonic m, int lane) => m switch
    {
        Mnemonic.Addps or Mnemonic.Addss or Mnemonic.Addpd or Mnemonic.Addsd => FloatOp.Add,
        Mnemonic.Subps or Mnemonic.Subss or Mnemonic.Subpd or Mnemonic.Subsd => FloatOp.Sub,
        Mnemonic.Mulps or Mnemonic.Mulss or Mnemonic.Mulpd or Mnemonic.Mulsd => FloatOp.Mul,
        Mnemonic.Divps or Mnemonic.Divss or Mnemonic.Divpd or Mnemonic.Divsd => FloatOp.Div,
        Mnemonic.Addsubps or Mnemonic.Addsubpd => (lane & 1) == 0 ? FloatOp.Sub : FloatOp.Add,
        _ => FloatOp.Sqrt,
    };

    /// <summary>Merges the flags into MXCSR and writes the destination unless an unmasked exception occurred
    /// (SDM Vol. 1 11.5.1): an unmasked pre-computation exception (IE, DE, ZE) in any lane stops the whole
    /// instruction before computing, so only the pre-computation flags are recorded; otherwise all flags are
    /// recorded and an unmasked OE/UE/PE faults with the destination unchanged (both checked on the host).</summary>
    private static SimdOutcome CommitFloat(in Instruction i, FpuState s, ISimdOperandAccess a, Vector128<byte> result,
        FpExceptions flags)
    {
        flags &= FpExceptions.Architectural;
        var masks = (FpExceptions)((s.Mxcsr >> 7) & 0x3F);
        var pre = flags & (FpExceptions.Invalid | FpExceptions.Denormal | FpExceptions.DivideByZero);
        if ((pre & ~masks) != 0)
        {
            s.Mxcsr |= (uint)pre;
            return SimdFault(a);
        }

        s.Mxcsr |= (uint)flags;
        if ((flags & ~masks) != 0)
        {
            return SimdFault(a);
        }

        return Store(in i, 0, s, a, result);
    }

    private static FpValue GetLane(Vector128<byte> v, int lane, bool dbl, bool daz, ref FpExceptions flags) =>
        dbl
            ? SoftFloat.UnpackDouble(v.AsUInt64().GetElement(lane), daz, ref flags)
            : SoftFloat.UnpackSingle(v.AsUInt32().GetElement(lane), daz, ref flags);

    private static Vector128<byte> SetLane(Vector128<byte> v, int lane, bool dbl, ulong bits) =>
        dbl ? v.AsUInt64().WithElement(lane, bits).AsByte() : v.AsUInt32().WithElement(lane, (uint)bits).AsByte();

    private static ulong Pack(FpValue v, bool dbl) => dbl ? SoftFloat.PackDouble(v) : SoftFloat.PackSingle(v);

    /// <summary>SSE NaN propagation: SNaN operands signal invalid; the first NaN source (destination operand first)
    /// is returned quieted.</summary>
    private static bool PropagateNaN(FpValue x, FpValue y, ref FpExceptions flags, out FpValue nan)
    {
        if (!x.IsNaN && !y.IsNaN)
        {
            nan = default;
            return false;
        }

        if (x.Class == FpClass.SignalingNaN || y.Class == FpClass.SignalingNaN)
        {
            flags |= FpExceptions.Invalid;
        }

        nan = x.IsNaN ? x.Quieted() : y.Quieted();
        return true;
    }

    private static FpValue Arith(FloatOp op, FpValue x, FpValue y, bool dbl, in FpEnv env, ref FpExceptions flags)
    {
        var format = dbl ? FpFormat.Double : FpFormat.Single;
        if (op == FloatOp.Sqrt)
        {
            if (y.IsNaN)
            {
                if (y.Class == FpClass.SignalingNaN)
                {
                    flags |= FpExceptions.Invalid;
                }

                return y.Quieted();
            }

            return SoftFloat.Sqrt(y, format, env, ref flags);
        }

        if (PropagateNaN(x, y, ref flags, out var nan))
        {
            return nan;
        }

        return op switch
        {
            FloatOp.Add => SoftFloat.Add(x, y, format, env, ref flags),
            FloatOp.Sub => SoftFloat.Add(x, y.Negated(), format, env, ref flags),
            FloatOp.Mul => SoftFloat.Multiply(x, y, format, env, ref flags),
            _ => SoftFloat.Divide(x, y, format, env, ref flags),
        };
    }

    /// <summary>MIN/MAX (SDM Vol. 2 MINPS): any NaN or two zeros return the source (second) operand unchanged;
    /// any NaN, quiet or not, raises invalid.</summary>
    private static FpValue MinMax(FpValue x, FpValue y, bool max, ref FpExceptions flags)
    {
        if (x.IsNaN || y.IsNaN)
        {
            flags |= FpExceptions.Invalid;
            return y;
        }

        var c = SoftFloat.Compare(x, y);
        return max ? (c > 0 ? x : y) : (c < 0 ? x : y);
    }

    /// <summary>CMPPS predicates 0-7 (SDM Vol. 2A Table 3-1): EQ, LT, LE, UNORD, NEQ, NLT, NLE, ORD. LT/LE/NLT/NLE
    /// signal invalid on QNaN too.</summary>
    private static bool ComparePredicate(FpValue x, FpValue y, int predicate, ref FpExceptions flags)
    {
        var unordered = x.IsNaN || y.IsNaN;
        if (x.Class == FpClass.SignalingNaN || y.Class == FpClass.SignalingNaN
            || (unordered && predicate is 1 or 2 or 5 or 6))
        {
            flags |= FpExceptions.Invalid;
        }

        var c = SoftFloat.Compare(x, y);
        return predicate switch
        {
            0 => c == 0,
            1 => c < 0,
            2 => c <= 0,
            3 => unordered,
            4 => c != 0,
            5 => !(c < 0),
            6 => !(c <= 0),
            _ => !unordered,
        };
    }

    private static SimdOutcome CompareToFlags(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var r = LoadPair(in i, s, a, out var dst, out var src);
        if (r != SimdOutcome.Ok)
        {
            return r;
        }

        var dbl = i.Mnemonic is Mnemonic.Comisd or Mnemonic.Ucomisd;
        var signaling = i.Mnemonic is Mnemonic.Comiss or Mnemonic.Comisd;
        var daz = (s.Mxcsr & MxcsrDaz) != 0;
        var flags = FpExceptions.None;
        var x = GetLane(dst, 0, dbl, daz, ref flags);
        var y = GetLane(src, 0, dbl, daz, ref flags);
        var unordered = x.IsNaN || y.IsNaN;
        if (x.Class == FpClass.SignalingNaN || y.Class == FpClass.SignalingNaN || (signaling && unordered))
        {
            flags |= FpExceptions.Invalid;
        }

        flags = SoftFloat.DenormalPrecedence(flags, x, y);
        s.Mxcsr |= (uint)flags;
        if (((uint)flags & ~(s.Mxcsr >> 7) & 0x3F) != 0)
        {
            return SimdFault(a);
        }

        var c = SoftFloat.Compare(x, y);
        var value = c switch
        {
            null => FlagZf | FlagPf | FlagCf,
            0 => FlagZf,
            < 0 => FlagCf,
            _ => 0UL,
        };
        a.SetFlags(FlagZf | FlagPf | FlagCf | FlagOf | FlagSf | FlagAf, value);
        return SimdOutcome.Ok;
    }

    /// <summary>RCPPS/RSQRTPS and scalar forms: no exceptions, implementation-specific precision. On an x86 host the
    /// host instruction gives that CPU's exact bits; elsewhere 1/x and 1/sqrt(x) rounded to single stand in.</summary>
    private static SimdOutcome Approximate(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var r = LoadPair(in i, s, a, out var dst, out var src);
        if (r != SimdOutcome.Ok)
        {
            return r;
        }

        var rsqrt = i.Mnemonic is Mnemonic.Rsqrtps or Mnemonic.Rsqrtss;
        Vector128<float> approx;
        if (Sse.IsSupported)
        {
            approx = rsqrt ? Sse.ReciprocalSqrt(src.AsSingle()) : Sse.Reciprocal(src.AsSingle());
        }
        else
        {
            var f = src.AsSingle();
            approx = rsqrt ? Vector128<float>.One / Vector128.Sqrt(f) : Vector128<float>.One / f;
        }

        var result = i.Mnemonic is Mnemonic.Rcpss or Mnemonic.Rsqrtss
            ? dst.AsSingle().WithElement(0, approx.ToScalar()).AsByte()
            : approx.AsByte();
        return Store(in i, 0, s, a, result);
    }

    private static SimdOutcome Convert(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var m = i.Mnemonic;
        var r = Load(in i, 1, s, a, out var src);
        if (r != SimdOutcome.Ok)
        {
            return r;
        }

        var env = FpEnv.FromMxcsr(s.Mxcsr);
        var daz = (s.Mxcsr & MxcsrDaz) != 0;
        var flags = FpExceptions.None;
        var truncate = m is Mnemonic.Cvttss2si or Mnemonic.Cvttsd2si or Mnemonic.Cvttps2dq or Mnemonic.Cvttpd2dq
            or Mnemonic.Cvttps2pi or Mnemonic.Cvttpd2pi;
        var rc = truncate ? RoundingMode.TowardZero : env.Rounding;
        Vector128<byte> result;
        switch (m)
        {
            case Mnemonic.Cvtsi2ss:
            case Mnemonic.Cvtsi2sd:
            {
                var size = i.Op1Kind == OpKind.Register ? i.Op1Register.GetSize() : i.MemorySize.GetSize();
                var raw = src.AsUInt64().ToScalar();
                var value = size == 8 ? (long)raw : (int)(uint)raw;
                var dbl = m == Mnemonic.Cvtsi2sd;
                var f = SoftFloat.RoundTo(SoftFloat.FromInteger(value), dbl ? FpFormat.Double : FpFormat.Single, env,
                    ref flags);
                result = SetLane(s.Xmm[i.Op0Register - Register.XMM0], 0, dbl, Pack(f, dbl));
                break;
            }

            case Mnemonic.Cvtss2si:
            case Mnemonic.Cvttss2si:
            case Mnemonic.Cvtsd2si:
            case Mnemonic.Cvttsd2si:
            {
                var dbl = m is Mnemonic.Cvtsd2si or Mnemonic.Cvttsd2si;
                var bits = i.Op0Register.GetSize() * 8;
                var ignored = FpExceptions.None; // conversions to integer report no denormal (SDM CVTSS2SI)
                var x = GetLane(src, 0, dbl, daz, ref ignored);
                var value = SoftFloat.ToInteger(x, bits, rc, ref flags);
                result = Vector128.CreateScalar(bits == 32 ? (ulong)(uint)value : (ulong)value).AsByte();
                break;
            }

            case Mnemonic.Cvtss2sd:
            case Mnemonic.Cvtsd2ss:
            {
                var toDouble = m == Mnemonic.Cvtss2sd;
                var f = FloatToFloat(GetLane(src, 0, !toDouble, daz, ref flags), toDouble, env, ref flags);
                result = SetLane(s.Xmm[i.Op0Register - Register.XMM0], 0, toDouble, Pack(f, toDouble));
                break;
            }

            case Mnemonic.Cvtps2pd:
            case Mnemonic.Cvtpd2ps:
            {
                var toDouble = m == Mnemonic.Cvtps2pd;
                result = default;
                for (var k = 0; k < 2; k++)
                {
                    var f = FloatToFloat(GetLane(src, k, !toDouble, daz, ref flags), toDouble, env, ref flags);
                    result = SetLane(result, k, toDouble, Pack(f, toDouble));
                }

                break;
            }

            case Mnemonic.Cvtdq2ps:
            case Mnemonic.Cvtdq2pd:
            case Mnemonic.Cvtpi2ps:
            case Mnemonic.Cvtpi2pd:
            {
                var toDouble = m is Mnemonic.Cvtdq2pd or Mnemonic.Cvtpi2pd;
                var count = m == Mnemonic.Cvtdq2ps ? 4 : 2;
                result = m == Mnemonic.Cvtpi2ps ? s.Xmm[i.Op0Register - Register.XMM0] : default;
                for (var k = 0; k < count; k++)
                {
                    var f = SoftFloat.RoundTo(SoftFloat.FromInteger(src.AsInt32().GetElement(k)),
                        toDouble ? FpFormat.Double : FpFormat.Single, env, ref flags);
                    result = SetLane(result, k, toDouble, Pack(f, toDouble));
                }

                break;
            }

            default:
            {
                // CVT(T)PS2DQ, CVT(T)PD2DQ, CVT(T)PS2PI, CVT(T)PD2PI: to packed int32.
                var fromDouble = m is Mnemonic.Cvtpd2dq or Mnemonic.Cvttpd2dq or Mnemonic.Cvtpd2pi
                    or Mnemonic.Cvttpd2pi;
                var count = m is Mnemonic.Cvtps2dq or Mnemonic.Cvttps2dq ? 4 : 2;
                result = default;
                for (var k = 0; k < count; k++)
                {
                    var ignored = FpExceptions.None;
                    var value = SoftFloat.ToInteger(GetLane(src, k, fromDouble, daz, ref ignored), 32, rc, ref flags);
                    result = result.AsInt32().WithElement(k, (int)value).AsByte();
                }

                break;
            }
        }

        return CommitFloat(in i, s, a, result, flags);
    }

    /// <summary>Single to double or back: SNaN signals invalid and is quieted; payload bits are kept (truncated when
    /// narrowing).</summary>
    private static FpValue FloatToFloat(FpValue x, bool toDouble, in FpEnv env, ref FpExceptions flags)
    {
        if (x.IsNaN)
        {
            if (x.Class == FpClass.SignalingNaN)
            {
                flags |= FpExceptions.Invalid;
            }

            return x.Quieted();
        }

        return SoftFloat.RoundTo(x, toDouble ? FpFormat.Double : FpFormat.Single, env, ref flags);
    }
}
