using System.Runtime.Intrinsics;
using Iced.Intel;

namespace Ringvisor.Emulator.Fpu;

/// <summary>
/// SSE4.1 (SDM Vol. 2, "SSE4.1" instructions, legacy 66 0F 38/3A encodings). Only executed when
/// <see cref="FpuState.Sse41Enabled"/> is set, i.e. when the CPU model advertises CPUID.1:ECX.SSE4_1; otherwise
/// these encodings raise #UD like on a CPU without SSE4.1.
/// </summary>
public static partial class SimdExecutor
{
    private static Mnemonic[] Sse41Mnemonics =>
    [
        Mnemonic.Pmulld, Mnemonic.Pmuldq, Mnemonic.Pminsb, Mnemonic.Pminsd, Mnemonic.Pminuw, Mnemonic.Pminud,
        Mnemonic.Pmaxsb, Mnemonic.Pmaxsd, Mnemonic.Pmaxuw, Mnemonic.Pmaxud, Mnemonic.Pcmpeqq, Mnemonic.Packusdw,
        Mnemonic.Pmovsxbw, Mnemonic.Pmovsxbd, Mnemonic.Pmovsxbq, Mnemonic.Pmovsxwd, Mnemonic.Pmovsxwq,
        Mnemonic.Pmovsxdq, Mnemonic.Pmovzxbw, Mnemonic.Pmovzxbd, Mnemonic.Pmovzxbq, Mnemonic.Pmovzxwd,
        Mnemonic.Pmovzxwq, Mnemonic.Pmovzxdq, Mnemonic.Ptest, Mnemonic.Pblendw, Mnemonic.Pblendvb, Mnemonic.Blendps,
        Mnemonic.Blendpd, Mnemonic.Blendvps, Mnemonic.Blendvpd, Mnemonic.Pextrb, Mnemonic.Pextrd, Mnemonic.Pextrq,
        Mnemonic.Extractps, Mnemonic.Pinsrb, Mnemonic.Pinsrd, Mnemonic.Pinsrq, Mnemonic.Insertps,
        Mnemonic.Phminposuw, Mnemonic.Mpsadbw, Mnemonic.Movntdqa, Mnemonic.Roundps, Mnemonic.Roundpd,
        Mnemonic.Roundss, Mnemonic.Roundsd, Mnemonic.Dpps, Mnemonic.Dppd,
    ];

    private static SimdOutcome ExecuteSse41(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var m = i.Mnemonic;
        SimdOutcome r;
        Vector128<byte> v;
        switch (m)
        {
            case Mnemonic.Pextrb:
            case Mnemonic.Pextrd:
            case Mnemonic.Pextrq:
            case Mnemonic.Extractps:
            {
                r = Load(in i, 1, s, a, out v);
                if (r != SimdOutcome.Ok)
                {
                    return r;
                }

                var imm = i.Immediate8;
                var (value, size) = m switch
                {
                    Mnemonic.Pextrb => (v.GetElement(imm & 15), 1),
                    Mnemonic.Pextrq => (v.AsUInt64().GetElement(imm & 1), 8),
                    _ => ((ulong)v.AsUInt32().GetElement(imm & 3), 4),
                };
                return StoreScalar(in i, s, a, value, size);
            }

            case Mnemonic.Pinsrb:
            case Mnemonic.Pinsrd:
            case Mnemonic.Pinsrq:
            {
                r = Load(in i, 1, s, a, out v);
                if (r != SimdOutcome.Ok)
                {
                    return r;
                }

                var d = s.Xmm[i.Op0Register - Register.XMM0];
                var imm = i.Immediate8;
                s.Xmm[i.Op0Register - Register.XMM0] = m switch
                {
                    Mnemonic.Pinsrb => d.WithElement(imm & 15, v.GetElement(0)),
                    Mnemonic.Pinsrq => d.AsUInt64().WithElement(imm & 1, v.AsUInt64().ToScalar()).AsByte(),
                    _ => d.AsUInt32().WithElement(imm & 3, v.AsUInt32().ToScalar()).AsByte(),
                };
                return SimdOutcome.Ok;
            }

            case Mnemonic.Ptest:
            {
                r = LoadPair(in i, s, a, out var dst, out var src);
                if (r != SimdOutcome.Ok)
                {
                    return r;
                }

                var zf = (dst & src) == Vector128<byte>.Zero;
                var cf = Vector128.AndNot(src, dst) == Vector128<byte>.Zero;
                a.SetFlags(FlagZf | FlagPf | FlagCf | FlagOf | FlagSf | FlagAf,
                    (zf ? FlagZf : 0) | (cf ? FlagCf : 0));
                return SimdOutcome.Ok;
            }

            case Mnemonic.Roundps:
            case Mnemonic.Roundpd:
            case Mnemonic.Roundss:
            case Mnemonic.Roundsd:
                return Round41(in i, s, a);
            case Mnemonic.Dpps:
            case Mnemonic.Dppd:
                return DotProduct(in i, s, a);
        }

        r = LoadPair(in i, s, a, out var x, out var y);
        if (r != SimdOutcome.Ok)
        {
            return r;
        }

        var imm8 = i.Immediate8;
        var mask = s.Xmm[0];
        var result = m switch
        {
            Mnemonic.Pmulld => (x.AsInt32() * y.AsInt32()).AsByte(),
            Mnemonic.Pmuldq => Vector128.Create(
                (long)x.AsInt32().GetElement(0) * y.AsInt32().GetElement(0),
                (long)x.AsInt32().GetElement(2) * y.AsInt32().GetElement(2)).AsByte(),
            Mnemonic.Pminsb => Vector128.Min(x.AsSByte(), y.AsSByte()).AsByte(),
            Mnemonic.Pminsd => Vector128.Min(x.AsInt32(), y.AsInt32()).AsByte(),
            Mnemonic.Pminuw => Vector128.Min(x.AsUInt16(), y.AsUInt16()).AsByte(),
            Mnemonic.Pminud => Vector128.Min(x.AsUInt32(), y.AsUInt32()).AsByte(),
            Mnemonic.Pmaxsb => Vector128.Max(x.AsSByte(), y.AsSByte()).AsByte(),
            Mnemonic.Pmaxsd => Vector128.Max(x.AsInt32(), y.AsInt32()).AsByte(),
            Mnemonic.Pmaxuw => Vector128.Max(x.AsUInt16(), y.AsUInt16()).AsByte(),
            Mnemonic.Pmaxud => Vector128.Max(x.AsUInt32(), y.AsUInt32()).AsByte(),
            Mnemonic.Pcmpeqq => Vector128.Equals(x.AsUInt64(), y.AsUInt64()).AsByte(),
            Mnemonic.Packusdw => Packusdw(x, y),
            Mnemonic.Pmovsxbw or Mnemonic.Pmovsxbd or Mnemonic.Pmovsxbq or Mnemonic.Pmovsxwd or Mnemonic.Pmovsxwq
                or Mnemonic.Pmovsxdq or Mnemonic.Pmovzxbw or Mnemonic.Pmovzxbd or Mnemonic.Pmovzxbq
                or Mnemonic.Pmovzxwd or Mnemonic.Pmovzxwq or Mnemonic.Pmovzxdq => Extend(m, y),
            Mnemonic.Pblendw => Select(x, y, 2, k => ((imm8 >> k) & 1) != 0),
            Mnemonic.Blendps => Select(x, y, 4, k => ((imm8 >> k) & 1) != 0),
            Mnemonic.Blendpd => Select(x, y, 8, k => ((imm8 >> k) & 1) != 0),
            Mnemonic.Pblendvb => Select(x, y, 1, k => (mask.GetElement(k) & 0x80) != 0),
            Mnemonic.Blendvps => Select(x, y, 4, k => (mask.GetElement((4 * k) + 3) & 0x80) != 0),
            Mnemonic.Blendvpd => Select(x, y, 8, k => (mask.GetElement((8 * k) + 7) & 0x80) != 0),
            Mnemonic.Insertps => Insertps(in i, x, y, imm8),
            Mnemonic.Phminposuw => Phminposuw(y),
            Mnemonic.Mpsadbw => Mpsadbw(x, y, imm8),
            Mnemonic.Movntdqa => y,
            _ => throw new InvalidOperationException($"SSE4.1 dispatch missing {m}."),
        };
        return Store(in i, 0, s, a, result);
    }

    /// <summary>Stores an extracted element: a GPR gets it zero-extended, memory gets <paramref name="size"/> bytes.</summary>
    private static SimdOutcome StoreScalar(in Instruction i, FpuState s, ISimdOperandAccess a, ulong value, int size)
    {
        if (i.Op0Kind == OpKind.Register)
        {
            a.WriteGpr(i.Op0Register, value);
            return SimdOutcome.Ok;
        }

        return Store(in i, 0, s, a, Vector128.CreateScalar(value).AsByte(), size);
    }

    private static Vector128<byte> Packusdw(Vector128<byte> x, Vector128<byte> y)
    {
        Span<ushort> r = stackalloc ushort[8];
        for (var k = 0; k < 4; k++)
        {
            r[k] = SatU16(x.AsInt32().GetElement(k));
            r[4 + k] = SatU16(y.AsInt32().GetElement(k));
        }

        return Vector128.Create((ReadOnlySpan<ushort>)r).AsByte();
    }

    private static Vector128<byte> Extend(Mnemonic m, Vector128<byte> v)
    {
        var (from, to, signed) = m switch
        {
            Mnemonic.Pmovsxbw => (1, 2, true),
            Mnemonic.Pmovsxbd => (1, 4, true),
            Mnemonic.Pmovsxbq => (1, 8, true),
            Mnemonic.Pmovsxwd => (2, 4, true),
            Mnemonic.Pmovsxwq => (2, 8, true),
            Mnemonic.Pmovsxdq => (4, 8, true),
            Mnemonic.Pmovzxbw => (1, 2, false),
            Mnemonic.Pmovzxbd => (1, 4, false),
            Mnemonic.Pmovzxbq => (1, 8, false),
            Mnemonic.Pmovzxwd => (2, 4, false),
            Mnemonic.Pmovzxwq => (2, 8, false),
            _ => (4, 8, false),
        };
        Span<byte> src = stackalloc byte[16];
        Span<byte> r = stackalloc byte[16];
        v.CopyTo(src);
        for (var k = 0; k < 16 / to; k++)
        {
            long value = from switch
            {
                1 => signed ? (sbyte)src[k] : src[k],
                2 => signed ? BitConverter.ToInt16(src[(2 * k)..]) : BitConverter.ToUInt16(src[(2 * k)..]),
                _ => signed ? BitConverter.ToInt32(src[(4 * k)..]) : BitConverter.ToUInt32(src[(4 * k)..]),
            };
            for (var b = 0; b < to; b++)
            {
                r[(k * to) + b] = (byte)(value >> (8 * b));
            }
        }

        return Vector128.Create((ReadOnlySpan<byte>)r);
    }

    /// <summary>Per element of <paramref name="width"/> bytes: the source element where the predicate holds.</summary>
    private static Vector128<byte> Select(Vector128<byte> dst, Vector128<byte> src, int width, Func<int, bool> fromSource)
    {
        Span<byte> r = stackalloc byte[16];
        dst.CopyTo(r);
        for (var k = 0; k < 16 / width; k++)
        {
            if (fromSource(k))
            {
                for (var b = 0; b < width; b++)
                {
                    r[(k * width) + b] = src.GetElement((k * width) + b);
                }
            }
        }

        return Vector128.Create((ReadOnlySpan<byte>)r);
    }

    private static Vector128<byte> Insertps(in Instruction i, Vector128<byte> dst, Vector128<byte> src, byte imm)
    {
        // A register source supplies element imm[7:6]; a memory source is the 32-bit value itself.
        var element = i.Op1Kind == OpKind.Register ? src.AsUInt32().GetElement(imm >> 6) : src.AsUInt32().ToScalar();
        var r = dst.AsUInt32().WithElement((imm >> 4) & 3, element);
        for (var k = 0; k < 4; k++)
        {
            if (((imm >> k) & 1) != 0)
            {
                r = r.WithElement(k, 0u);
            }
        }

        return r.AsByte();
    }

    private static Vector128<byte> Phminposuw(Vector128<byte> v)
    {
        var w = v.AsUInt16();
        var min = w.GetElement(0);
        var index = 0;
        for (var k = 1; k < 8; k++)
        {
            if (w.GetElement(k) < min)
            {
                min = w.GetElement(k);
                index = k;
            }
        }

        return Vector128.Create(min, (ushort)index, 0, 0, 0, 0, 0, 0).AsByte();
    }

    private static Vector128<byte> Mpsadbw(Vector128<byte> dst, Vector128<byte> src, byte imm)
    {
        var dstOffset = ((imm >> 2) & 1) * 4;
        var srcOffset = (imm & 3) * 4;
        Span<ushort> r = stackalloc ushort[8];
        for (var k = 0; k < 8; k++)
        {
            var sum = 0;
            for (var j = 0; j < 4; j++)
            {
                sum += Math.Abs(dst.GetElement(dstOffset + k + j) - src.GetElement(srcOffset + j));
            }

            r[k] = (ushort)sum;
        }

        return Vector128.Create((ReadOnlySpan<ushort>)r).AsByte();
    }

    /// <summary>ROUNDPS/PD/SS/SD: imm[2] selects MXCSR.RC over imm[1:0]; imm[3] suppresses PE. Only SNaN signals
    /// (invalid); no denormal exception (SDM ROUNDPS).</summary>
    private static SimdOutcome Round41(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var r = LoadPair(in i, s, a, out var dst, out var src);
        if (r != SimdOutcome.Ok)
        {
            return r;
        }

        var m = i.Mnemonic;
        var dbl = m is Mnemonic.Roundpd or Mnemonic.Roundsd;
        var lanes = m is Mnemonic.Roundss or Mnemonic.Roundsd ? 1 : dbl ? 2 : 4;
        var imm = i.Immediate8;
        var rc = (imm & 4) != 0 ? FpEnv.FromMxcsr(s.Mxcsr).Rounding : (RoundingMode)(imm & 3);
        var daz = (s.Mxcsr & MxcsrDaz) != 0;
        var flags = FpExceptions.None;
        var result = dst;
        for (var k = 0; k < lanes; k++)
        {
            var ignored = FpExceptions.None;
            var x = GetLane(src, k, dbl, daz, ref ignored);
            FpValue y;
            if (x.IsNaN)
            {
                flags |= x.Class == FpClass.SignalingNaN ? FpExceptions.Invalid : 0;
                y = x.Quieted();
            }
            else
            {
                var laneFlags = FpExceptions.None;
                y = SoftFloat.RoundToIntegral(x, rc, ref laneFlags);
                if ((imm & 8) == 0)
                {
                    flags |= laneFlags & FpExceptions.Precision;
                }
            }

            result = SetLane(result, k, dbl, Pack(y, dbl));
        }

        return CommitFloat(in i, s, a, result, flags);
    }

    /// <summary>One addition of DPPS/DPPD: the rounded intermediates are operands like any other, so a denormal
    /// one raises DE or, with DAZ, counts as zero (observed on the host).</summary>
    private static FpValue AddIntermediates(FpValue x, FpValue y, bool dbl, bool daz, in FpEnv env,
        ref FpExceptions flags)
    {
        var format = dbl ? FpFormat.Double : FpFormat.Single;
        var laneFlags = FpExceptions.None;
        x = AsOperand(x, format, daz, ref laneFlags);
        y = AsOperand(y, format, daz, ref laneFlags);
        var sum = Arith(FloatOp.Add, x, y, dbl, env, ref laneFlags);
        flags |= SoftFloat.DenormalPrecedence(laneFlags, x, y);
        return sum;
    }

    private static FpValue AsOperand(FpValue v, FpFormat format, bool daz, ref FpExceptions flags)
    {
        if (v.Class != FpClass.Finite || v.Exponent >= format.MinExponent)
        {
            return v;
        }

        if (daz)
        {
            return FpValue.Zero(v.Sign);
        }

        flags |= FpExceptions.Denormal;
        return v;
    }

    /// <summary>DPPS/DPPD (SDM Vol. 2A DPPS): selected products rounded, summed pairwise with rounding, broadcast to
    /// the selected result lanes; unselected products are +0.0.</summary>
    private static SimdOutcome DotProduct(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var r = LoadPair(in i, s, a, out var dst, out var src);
        if (r != SimdOutcome.Ok)
        {
            return r;
        }

        var dbl = i.Mnemonic == Mnemonic.Dppd;
        var lanes = dbl ? 2 : 4;
        var imm = i.Immediate8;
        var env = FpEnv.FromMxcsr(s.Mxcsr);
        var daz = (s.Mxcsr & MxcsrDaz) != 0;
        var flags = FpExceptions.None;
        Span<FpValue> products = stackalloc FpValue[4];
        for (var k = 0; k < lanes; k++)
        {
            if (((imm >> (4 + k)) & 1) == 0)
            {
                products[k] = FpValue.Zero(false);
                continue;
            }

            var laneFlags = FpExceptions.None;
            var x = GetLane(dst, k, dbl, daz, ref laneFlags);
            var y = GetLane(src, k, dbl, daz, ref laneFlags);
            products[k] = Arith(FloatOp.Mul, x, y, dbl, env, ref laneFlags);
            flags |= SoftFloat.DenormalPrecedence(laneFlags, x, y);
        }

        FpValue sum;
        if (dbl)
        {
            sum = AddIntermediates(products[0], products[1], dbl, daz, env, ref flags);
        }
        else
        {
            var low = AddIntermediates(products[0], products[1], dbl, daz, env, ref flags);
            var high = AddIntermediates(products[2], products[3], dbl, daz, env, ref flags);
            sum = AddIntermediates(low, high, dbl, daz, env, ref flags);
        }

        var bits = Pack(sum, dbl);
        var result = Vector128<byte>.Zero;
        for (var k = 0; k < lanes; k++)
        {
            if (((imm >> k) & 1) != 0)
            {
                result = SetLane(result, k, dbl, bits);
            }
        }

        return CommitFloat(in i, s, a, result, flags);
    }
}
