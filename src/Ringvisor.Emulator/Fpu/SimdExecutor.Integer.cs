using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Iced.Intel;

namespace Ringvisor.Emulator.Fpu;

/// <summary>MMX/SSE2/SSSE3 integer instructions and the bitwise float logic ops (SDM Vol. 2 PADD* ... PMULHRSW).
/// These are exact, so they are computed with portable Vector128 operations or plain loops. MMX forms work on the
/// low 8 bytes (width <c>w</c> = 8) with their own pairing rules for pack/unpack/horizontal ops.</summary>
public static partial class SimdExecutor
{
    private static Mnemonic[] IntegerMnemonics =>
    [
        Mnemonic.Paddb, Mnemonic.Paddw, Mnemonic.Paddd, Mnemonic.Paddq, Mnemonic.Paddsb, Mnemonic.Paddsw,
        Mnemonic.Paddusb, Mnemonic.Paddusw, Mnemonic.Psubb, Mnemonic.Psubw, Mnemonic.Psubd, Mnemonic.Psubq,
        Mnemonic.Psubsb, Mnemonic.Psubsw, Mnemonic.Psubusb, Mnemonic.Psubusw, Mnemonic.Pcmpeqb, Mnemonic.Pcmpeqw,
        Mnemonic.Pcmpeqd, Mnemonic.Pcmpgtb, Mnemonic.Pcmpgtw, Mnemonic.Pcmpgtd, Mnemonic.Pand, Mnemonic.Pandn,
        Mnemonic.Por, Mnemonic.Pxor, Mnemonic.Andps, Mnemonic.Andpd, Mnemonic.Andnps, Mnemonic.Andnpd,
        Mnemonic.Orps, Mnemonic.Orpd, Mnemonic.Xorps, Mnemonic.Xorpd, Mnemonic.Pmullw, Mnemonic.Pmulhw,
        Mnemonic.Pmulhuw, Mnemonic.Pmuludq, Mnemonic.Pmaddwd, Mnemonic.Psadbw, Mnemonic.Pavgb, Mnemonic.Pavgw,
        Mnemonic.Pminub, Mnemonic.Pmaxub, Mnemonic.Pminsw, Mnemonic.Pmaxsw, Mnemonic.Psllw, Mnemonic.Pslld,
        Mnemonic.Psllq, Mnemonic.Psrlw, Mnemonic.Psrld, Mnemonic.Psrlq, Mnemonic.Psraw, Mnemonic.Psrad,
        Mnemonic.Pslldq, Mnemonic.Psrldq, Mnemonic.Punpcklbw, Mnemonic.Punpcklwd, Mnemonic.Punpckldq,
        Mnemonic.Punpcklqdq, Mnemonic.Punpckhbw, Mnemonic.Punpckhwd, Mnemonic.Punpckhdq, Mnemonic.Punpckhqdq,
        Mnemonic.Packsswb, Mnemonic.Packssdw, Mnemonic.Packuswb, Mnemonic.Pshufd, Mnemonic.Pshufhw,
        Mnemonic.Pshuflw, Mnemonic.Pshufw, Mnemonic.Pmovmskb, Mnemonic.Pextrw, Mnemonic.Pinsrw, Mnemonic.Pshufb,
        Mnemonic.Palignr, Mnemonic.Pabsb, Mnemonic.Pabsw, Mnemonic.Pabsd, Mnemonic.Psignb, Mnemonic.Psignw,
        Mnemonic.Psignd, Mnemonic.Phaddw, Mnemonic.Phaddd, Mnemonic.Phaddsw, Mnemonic.Phsubw, Mnemonic.Phsubd,
        Mnemonic.Phsubsw, Mnemonic.Pmulhrsw, Mnemonic.Pmaddubsw,
    ];

    private static SimdOutcome ExecuteInteger(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var m = i.Mnemonic;
        switch (m)
        {
            case Mnemonic.Pmovmskb:
            {
                var r = Load(in i, 1, s, a, out var v);
                if (r != SimdOutcome.Ok)
                {
                    return r;
                }

                var mask = v.ExtractMostSignificantBits();
                if (IsMmxOperand(in i, 1))
                {
                    mask &= 0xFF;
                }

                a.WriteGpr(i.Op0Register, mask);
                return SimdOutcome.Ok;
            }

            case Mnemonic.Pextrw:
            {
                var r = Load(in i, 1, s, a, out var v);
                if (r != SimdOutcome.Ok)
                {
                    return r;
                }

                var lanes = IsMmxOperand(in i, 1) ? 4 : 8;
                return StoreScalar(in i, s, a, v.AsUInt16().GetElement(i.Immediate8 & (lanes - 1)), 2);
            }

            case Mnemonic.Pinsrw:
            {
                var r = Load(in i, 0, s, a, out var d);
                if (r != SimdOutcome.Ok)
                {
                    return r;
                }

                r = Load(in i, 1, s, a, out var v);
                if (r != SimdOutcome.Ok)
                {
                    return r;
                }

                var lanes = IsMmx(in i) ? 4 : 8;
                var word = v.AsUInt16().ToScalar();
                return Store(in i, 0, s, a, d.AsUInt16().WithElement(i.Immediate8 & (lanes - 1), word).AsByte());
            }
        }

        var outcome = LoadPair(in i, s, a, out var dst, out var src);
        if (outcome != SimdOutcome.Ok)
        {
            return outcome;
        }

        var w = IsMmx(in i) ? 8 : 16;
        var result = m switch
        {
            Mnemonic.Paddb => Vector128.Add(dst, src),
            Mnemonic.Paddw => (dst.AsUInt16() + src.AsUInt16()).AsByte(),
            Mnemonic.Paddd => (dst.AsUInt32() + src.AsUInt32()).AsByte(),
            Mnemonic.Paddq => (dst.AsUInt64() + src.AsUInt64()).AsByte(),
            Mnemonic.Psubb => Vector128.Subtract(dst, src),
            Mnemonic.Psubw => (dst.AsUInt16() - src.AsUInt16()).AsByte(),
            Mnemonic.Psubd => (dst.AsUInt32() - src.AsUInt32()).AsByte(),
            Mnemonic.Psubq => (dst.AsUInt64() - src.AsUInt64()).AsByte(),
            Mnemonic.Paddsb => Map8(dst, src, static (x, y) => SatS8((sbyte)x + (sbyte)y)),
            Mnemonic.Psubsb => Map8(dst, src, static (x, y) => SatS8((sbyte)x - (sbyte)y)),
            Mnemonic.Paddusb => Map8(dst, src, static (x, y) => SatU8(x + y)),
            Mnemonic.Psubusb => Map8(dst, src, static (x, y) => SatU8(x - y)),
            Mnemonic.Paddsw => Map16(dst, src, static (x, y) => SatS16((short)x + (short)y)),
            Mnemonic.Psubsw => Map16(dst, src, static (x, y) => SatS16((short)x - (short)y)),
            Mnemonic.Paddusw => Map16(dst, src, static (x, y) => SatU16(x + y)),
            Mnemonic.Psubusw => Map16(dst, src, static (x, y) => SatU16(x - y)),
            Mnemonic.Pcmpeqb => Vector128.Equals(dst, src),
            Mnemonic.Pcmpeqw => Vector128.Equals(dst.AsUInt16(), src.AsUInt16()).AsByte(),
            Mnemonic.Pcmpeqd => Vector128.Equals(dst.AsUInt32(), src.AsUInt32()).AsByte(),
            Mnemonic.Pcmpgtb => Vector128.GreaterThan(dst.AsSByte(), src.AsSByte()).AsByte(),
            Mnemonic.Pcmpgtw => Vector128.GreaterThan(dst.AsInt16(), src.AsInt16()).AsByte(),
            Mnemonic.Pcmpgtd => Vector128.GreaterThan(dst.AsInt32(), src.AsInt32()).AsByte(),
            Mnemonic.Pand or Mnemonic.Andps or Mnemonic.Andpd => dst & src,
            Mnemonic.Pandn or Mnemonic.Andnps or Mnemonic.Andnpd => Vector128.AndNot(src, dst),
            Mnemonic.Por or Mnemonic.Orps or Mnemonic.Orpd => dst | src,
            Mnemonic.Pxor or Mnemonic.Xorps or Mnemonic.Xorpd => dst ^ src,
            Mnemonic.Pmullw => (dst.AsInt16() * src.AsInt16()).AsByte(),
            Mnemonic.Pmulhw => Map16(dst, src, static (x, y) => (ushort)(((short)x * (short)y) >> 16)),
            Mnemonic.Pmulhuw => Map16(dst, src, static (x, y) => (ushort)((x * y) >> 16)),
            Mnemonic.Pmulhrsw => Map16(dst, src,
                static (x, y) => (ushort)((((short)x * (short)y >> 14) + 1) >> 1)),
            Mnemonic.Pmuludq => Vector128.Create(
                (ulong)dst.AsUInt32().GetElement(0) * src.AsUInt32().GetElement(0),
                (ulong)dst.AsUInt32().GetElement(2) * src.AsUInt32().GetElement(2)).AsByte(),
            Mnemonic.Pmaddwd => Pmaddwd(dst, src),
            Mnemonic.Pmaddubsw => Pmaddubsw(dst, src),
            Mnemonic.Psadbw => Psadbw(dst, src, w),
            Mnemonic.Pavgb => Map8(dst, src, static (x, y) => (byte)((x + y + 1) >> 1)),
            Mnemonic.Pavgw => Map16(dst, src, static (x, y) => (ushort)((x + y + 1) >> 1)),
            Mnemonic.Pminub => Vector128.Min(dst, src),
            Mnemonic.Pmaxub => Vector128.Max(dst, src),
            Mnemonic.Pminsw => Vector128.Min(dst.AsInt16(), src.AsInt16()).AsByte(),
            Mnemonic.Pmaxsw => Vector128.Max(dst.AsInt16(), src.AsInt16()).AsByte(),
            Mnemonic.Psllw or Mnemonic.Pslld or Mnemonic.Psllq or Mnemonic.Psrlw or Mnemonic.Psrld
                or Mnemonic.Psrlq or Mnemonic.Psraw or Mnemonic.Psrad => Shift(m, dst, ShiftCount(in i, src)),
            Mnemonic.Pslldq => ByteShiftLeft(dst, i.Immediate8),
            Mnemonic.Psrldq => ByteShiftRight(dst, i.Immediate8),
            Mnemonic.Punpcklbw => Unpack(dst, src, w, 1, high: false),
            Mnemonic.Punpcklwd => Unpack(dst, src, w, 2, high: false),
            Mnemonic.Punpckldq => Unpack(dst, src, w, 4, high: false),
            Mnemonic.Punpcklqdq => Unpack(dst, src, w, 8, high: false),
            Mnemonic.Punpckhbw => Unpack(dst, src, w, 1, high: true),
            Mnemonic.Punpckhwd => Unpack(dst, src, w, 2, high: true),
            Mnemonic.Punpckhdq => Unpack(dst, src, w, 4, high: true),
            Mnemonic.Punpckhqdq => Unpack(dst, src, w, 8, high: true),
            Mnemonic.Packsswb => Pack(dst, src, w, PackKind.SignedWordToSignedByte),
            Mnemonic.Packuswb => Pack(dst, src, w, PackKind.SignedWordToUnsignedByte),
            Mnemonic.Packssdw => Pack(dst, src, w, PackKind.SignedDwordToSignedWord),
            Mnemonic.Pshufd => Vector128.Shuffle(src.AsUInt32(), ImmIndices4(i.Immediate8)).AsByte(),
            Mnemonic.Pshufw or Mnemonic.Pshuflw => Pshufw(src, i.Immediate8, 0),
            Mnemonic.Pshufhw => Pshufw(src, i.Immediate8, 4),
            Mnemonic.Pshufb => Pshufb(dst, src, w),
            Mnemonic.Palignr => Palignr(dst, src, w, i.Immediate8),
            Mnemonic.Pabsb => Vector128.Abs(src.AsSByte()).AsByte(),
            Mnemonic.Pabsw => Vector128.Abs(src.AsInt16()).AsByte(),
            Mnemonic.Pabsd => Vector128.Abs(src.AsInt32()).AsByte(),
            Mnemonic.Psignb => Map8(dst, src, static (x, y) => (byte)Sign((sbyte)x, (sbyte)y)),
            Mnemonic.Psignw => Map16(dst, src, static (x, y) => (ushort)Sign((short)x, (short)y)),
            Mnemonic.Psignd => Psignd(dst, src),
            Mnemonic.Phaddw or Mnemonic.Phaddsw or Mnemonic.Phsubw or Mnemonic.Phsubsw
                => Horizontal16(dst, src, w, m),
            Mnemonic.Phaddd or Mnemonic.Phsubd => Horizontal32(dst, src, w, m == Mnemonic.Phsubd),
            _ => throw new InvalidOperationException($"Integer dispatch missing {m}."),
        };

        return Store(in i, 0, s, a, result);
    }

    private static bool IsMmxOperand(in Instruction i, int op) =>
        i.GetOpKind(op) == OpKind.Register ? i.GetOpRegister(op).IsMM() : i.MemorySize.GetSize() == 8;

    private static byte SatS8(int v) => (byte)(sbyte)Math.Clamp(v, sbyte.MinValue, sbyte.MaxValue);

    private static byte SatU8(int v) => (byte)Math.Clamp(v, 0, byte.MaxValue);

    private static ushort SatS16(int v) => (ushort)(short)Math.Clamp(v, short.MinValue, short.MaxValue);

    private static ushort SatU16(int v) => (ushort)Math.Clamp(v, 0, ushort.MaxValue);

    private static int Sign(int x, int y) => y < 0 ? -x : y == 0 ? 0 : x;

    private static Vector128<byte> Map8(Vector128<byte> a, Vector128<byte> b, Func<int, int, byte> f)
    {
        Span<byte> r = stackalloc byte[16];
        for (var k = 0; k < 16; k++)
        {
            r[k] = f(a.GetElement(k), b.GetElement(k));
        }

        return Vector128.Create((ReadOnlySpan<byte>)r);
    }

    private static Vector128<byte> Map16(Vector128<byte> a, Vector128<byte> b, Func<int, int, ushort> f)
    {
        var x = a.AsUInt16();
        var y = b.AsUInt16();
        Span<ushort> r = stackalloc ushort[8];
        for (var k = 0; k < 8; k++)
        {
            r[k] = f(x.GetElement(k), y.GetElement(k));
        }

        return Vector128.Create((ReadOnlySpan<ushort>)r).AsByte();
    }

    private static Vector128<byte> Psignd(Vector128<byte> a, Vector128<byte> b)
    {
        var x = a.AsInt32();
        var y = b.AsInt32();
        return Vector128.Create(
            Sign(x.GetElement(0), y.GetElement(0)), Sign(x.GetElement(1), y.GetElement(1)),
            Sign(x.GetElement(2), y.GetElement(2)), Sign(x.GetElement(3), y.GetElement(3))).AsByte();
    }

    private static Vector128<byte> Pmaddwd(Vector128<byte> a, Vector128<byte> b)
    {
        var x = a.AsInt16();
        var y = b.AsInt16();
        Span<int> r = stackalloc int[4];
        for (var k = 0; k < 4; k++)
        {
            // 0x8000*0x8000*2 wraps to 0x80000000, as the SDM's PMADDWD note says.
            r[k] = unchecked((x.GetElement(2 * k) * y.GetElement(2 * k))
                + (x.GetElement((2 * k) + 1) * y.GetElement((2 * k) + 1)));
        }

        return Vector128.Create((ReadOnlySpan<int>)r).AsByte();
    }

    private static Vector128<byte> Pmaddubsw(Vector128<byte> a, Vector128<byte> b)
    {
        Span<ushort> r = stackalloc ushort[8];
        for (var k = 0; k < 8; k++)
        {
            var sum = (a.GetElement(2 * k) * (sbyte)b.GetElement(2 * k))
                + (a.GetElement((2 * k) + 1) * (sbyte)b.GetElement((2 * k) + 1));
            r[k] = SatS16(sum);
        }

        return Vector128.Create((ReadOnlySpan<ushort>)r).AsByte();
    }

    private static Vector128<byte> Psadbw(Vector128<byte> a, Vector128<byte> b, int w)
    {
        Span<ulong> r = stackalloc ulong[2];
        for (var g = 0; g < w / 8; g++)
        {
            var sum = 0;
            for (var k = 0; k < 8; k++)
            {
                sum += Math.Abs(a.GetElement((8 * g) + k) - b.GetElement((8 * g) + k));
            }

            r[g] = (ulong)sum;
        }

        return Vector128.Create((ReadOnlySpan<ulong>)r).AsByte();
    }

    /// <summary>The shift count of PSLL/PSRL/PSRA: the immediate, or the whole low quadword of the source.</summary>
    private static ulong ShiftCount(in Instruction i, Vector128<byte> src) =>
        i.GetOpKind(1) == OpKind.Immediate8 ? i.Immediate8 : src.AsUInt64().ToScalar();

    private static Vector128<byte> Shift(Mnemonic m, Vector128<byte> v, ulong count)
    {
        switch (m)
        {
            case Mnemonic.Psllw:
                return count > 15 ? default : Vector128.ShiftLeft(v.AsUInt16(), (int)count).AsByte();
            case Mnemonic.Pslld:
                return count > 31 ? default : Vector128.ShiftLeft(v.AsUInt32(), (int)count).AsByte();
            case Mnemonic.Psllq:
                return count > 63 ? default : Vector128.ShiftLeft(v.AsUInt64(), (int)count).AsByte();
            case Mnemonic.Psrlw:
                return count > 15 ? default : Vector128.ShiftRightLogical(v.AsUInt16(), (int)count).AsByte();
            case Mnemonic.Psrld:
                return count > 31 ? default : Vector128.ShiftRightLogical(v.AsUInt32(), (int)count).AsByte();
            case Mnemonic.Psrlq:
                return count > 63 ? default : Vector128.ShiftRightLogical(v.AsUInt64(), (int)count).AsByte();
            case Mnemonic.Psraw:
                return Vector128.ShiftRightArithmetic(v.AsInt16(), (int)Math.Min(count, 15)).AsByte();
            default:
                return Vector128.ShiftRightArithmetic(v.AsInt32(), (int)Math.Min(count, 31)).AsByte();
        }
    }

    private static Vector128<byte> ByteShiftLeft(Vector128<byte> v, byte count)
    {
        Span<byte> r = stackalloc byte[16];
        r.Clear();
        for (var k = count; k < 16; k++)
        {
            r[k] = v.GetElement(k - count);
        }

        return Vector128.Create((ReadOnlySpan<byte>)r);
    }

    private static Vector128<byte> ByteShiftRight(Vector128<byte> v, byte count)
    {
        Span<byte> r = stackalloc byte[16];
        r.Clear();
        for (var k = 0; k + count < 16; k++)
        {
            r[k] = v.GetElement(k + count);
        }

        return Vector128.Create((ReadOnlySpan<byte>)r);
    }

    /// <summary>PUNPCKL/H: interleave elements of size <paramref name="e"/> from the low or high half of the
    /// <paramref name="w"/>-byte operands (destination element first).</summary>
    private static Vector128<byte> Unpack(Vector128<byte> dst, Vector128<byte> src, int w, int e, bool high)
    {
        Span<byte> d = stackalloc byte[16];
        Span<byte> s = stackalloc byte[16];
        Span<byte> r = stackalloc byte[16];
        dst.CopyTo(d);
        src.CopyTo(s);
        var start = high ? w / 2 : 0;
        var o = 0;
        for (var k = start; k < start + (w / 2); k += e)
        {
            d.Slice(k, e).CopyTo(r[o..]);
            s.Slice(k, e).CopyTo(r[(o + e)..]);
            o += 2 * e;
        }

        return Vector128.Create((ReadOnlySpan<byte>)r);
    }

    private enum PackKind
    {
        SignedWordToSignedByte,
        SignedWordToUnsignedByte,
        SignedDwordToSignedWord,
    }

    private static Vector128<byte> Pack(Vector128<byte> dst, Vector128<byte> src, int w, PackKind kind)
    {
        Span<byte> r = stackalloc byte[16];
        r.Clear();
        if (kind == PackKind.SignedDwordToSignedWord)
        {
            var n = w / 4;
            var out16 = MemoryMarshal.Cast<byte, ushort>(r);
            for (var k = 0; k < n; k++)
            {
                out16[k] = SatS16(dst.AsInt32().GetElement(k));
                out16[n + k] = SatS16(src.AsInt32().GetElement(k));
            }
        }
        else
        {
            var n = w / 2;
            for (var k = 0; k < n; k++)
            {
                int x = dst.AsInt16().GetElement(k);
                int y = src.AsInt16().GetElement(k);
                r[k] = kind == PackKind.SignedWordToSignedByte ? SatS8(x) : SatU8(x);
                r[n + k] = kind == PackKind.SignedWordToSignedByte ? SatS8(y) : SatU8(y);
            }
        }

        return Vector128.Create((ReadOnlySpan<byte>)r);
    }

    private static Vector128<uint> ImmIndices4(byte imm) =>
        Vector128.Create((uint)(imm & 3), (uint)((imm >> 2) & 3), (uint)((imm >> 4) & 3), (uint)((imm >> 6) & 3));

    /// <summary>Shuffles the four words starting at word <paramref name="offset"/> (PSHUFW/PSHUFLW: 0, PSHUFHW: 4);
    /// the other four words are copied.</summary>
    private static Vector128<byte> Pshufw(Vector128<byte> src, byte imm, int offset)
    {
        var v = src.AsUInt16();
        var r = v;
        for (var k = 0; k < 4; k++)
        {
            r = r.WithElement(offset + k, v.GetElement(offset + ((imm >> (2 * k)) & 3)));
        }

        return r.AsByte();
    }

    private static Vector128<byte> Pshufb(Vector128<byte> dst, Vector128<byte> src, int w)
    {
        Span<byte> r = stackalloc byte[16];
        r.Clear();
        for (var k = 0; k < w; k++)
        {
            var index = src.GetElement(k);
            r[k] = (index & 0x80) != 0 ? (byte)0 : dst.GetElement(index & (w - 1));
        }

        return Vector128.Create((ReadOnlySpan<byte>)r);
    }

    /// <summary>PALIGNR: (dst:src) shifted right by imm bytes, low w bytes kept; counts past 2w give zero.</summary>
    private static Vector128<byte> Palignr(Vector128<byte> dst, Vector128<byte> src, int w, byte imm)
    {
        Span<byte> cat = stackalloc byte[32];
        cat.Clear();
        for (var k = 0; k < w; k++)
        {
            cat[k] = src.GetElement(k);
            cat[w + k] = dst.GetElement(k);
        }

        Span<byte> r = stackalloc byte[16];
        r.Clear();
        for (var k = 0; k < w; k++)
        {
            var idx = imm + k;
            r[k] = idx < 2 * w ? cat[idx] : (byte)0;
        }

        return Vector128.Create((ReadOnlySpan<byte>)r);
    }

    private static Vector128<byte> Horizontal16(Vector128<byte> dst, Vector128<byte> src, int w, Mnemonic m)
    {
        var n = w / 4; // results per operand
        Span<ushort> r = stackalloc ushort[8];
        r.Clear();
        for (var k = 0; k < n; k++)
        {
            r[k] = H16(dst.AsInt16().GetElement(2 * k), dst.AsInt16().GetElement((2 * k) + 1), m);
            r[n + k] = H16(src.AsInt16().GetElement(2 * k), src.AsInt16().GetElement((2 * k) + 1), m);
        }

        return Vector128.Create((ReadOnlySpan<ushort>)r).AsByte();
    }

    private static ushort H16(int x, int y, Mnemonic m) => m switch
    {
        Mnemonic.Phaddw => (ushort)(x + y),
        Mnemonic.Phaddsw => SatS16(x + y),
        Mnemonic.Phsubw => (ushort)(x - y),
        _ => SatS16(x - y),
    };

    private static Vector128<byte> Horizontal32(Vector128<byte> dst, Vector128<byte> src, int w, bool subtract)
    {
        var n = w / 8;
        Span<uint> r = stackalloc uint[4];
        r.Clear();
        for (var k = 0; k < n; k++)
        {
            var d0 = dst.AsUInt32().GetElement(2 * k);
            var d1 = dst.AsUInt32().GetElement((2 * k) + 1);
            var s0 = src.AsUInt32().GetElement(2 * k);
            var s1 = src.AsUInt32().GetElement((2 * k) + 1);
            r[k] = subtract ? d0 - d1 : d0 + d1;
            r[n + k] = subtract ? s0 - s1 : s0 + s1;
        }

        return Vector128.Create((ReadOnlySpan<uint>)r).AsByte();
    }
}
