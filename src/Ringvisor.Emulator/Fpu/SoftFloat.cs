using System.Numerics;

namespace Ringvisor.Emulator.Fpu;

/// <summary>
/// Correctly rounded IEEE 754 arithmetic in software for single, double and x87 double-extended formats, with all
/// four rounding modes and exception flags, shared by the SSE and x87 paths. .NET gives no control over or view of
/// the host MXCSR, so nothing here uses host floating point. Conventions follow x86 (SDM Vol. 1 4.9, 11.5):
/// tininess is detected after rounding (checked on the host: (1+2^-23) * 0x007FFFFF raises PE without UE),
/// masked underflow is flagged only when the result is also inexact, masked overflow returns infinity or the
/// largest finite value by rounding direction.
/// </summary>
internal static class SoftFloat
{
    /// <summary>Whether the last inexact <see cref="RoundBits"/> rounded the magnitude up (x87 C1).</summary>
    [ThreadStatic]
    private static bool t_roundedUp;

    /// <summary>Rounds m (normalized: bit 127 set; value = m / 2^127 * 2^exp) to <paramref name="format"/>.
    /// With overflow/underflow unmasked the result keeps its out-of-range exponent (x87 then rebiases it by 24576,
    /// SSE discards it).</summary>
    public static FpValue Round(bool sign, int exp, UInt128 m, FpFormat format, RoundingMode rc, bool ftz,
        FpExceptions masks, ref FpExceptions flags)
    {
        var p = format.Precision;
        var kU = RoundBits(m, 128 - p, sign, rc, out var inexactU);
        var eU = exp;
        if ((kU >> p) != 0)
        {
            kU >>= 1;
            eU++;
        }

        if (eU > format.MaxExponent)
        {
            if ((masks & FpExceptions.Overflow) != 0)
            {
                flags |= FpExceptions.Overflow | FpExceptions.Precision;
                var toInfinity = rc == RoundingMode.Nearest || (rc == RoundingMode.Up && !sign)
                    || (rc == RoundingMode.Down && sign);
                flags |= toInfinity ? FpExceptions.RoundedUp : 0;
                return toInfinity ? FpValue.Infinity(sign) : MaxFinite(sign, format);
            }

            flags |= FpExceptions.Overflow
                | (inexactU ? FpExceptions.Precision | (t_roundedUp ? FpExceptions.RoundedUp : 0) : 0);
            return new FpValue(FpClass.Finite, sign, eU, (ulong)(kU << (64 - p)));
        }

        if (eU >= format.MinExponent)
        {
            flags |= inexactU ? FpExceptions.Precision | (t_roundedUp ? FpExceptions.RoundedUp : 0) : 0;
            return new FpValue(FpClass.Finite, sign, eU, (ulong)(kU << (64 - p)));
        }

        // Tiny after rounding.
        if ((masks & FpExceptions.Underflow) == 0)
        {
            flags |= FpExceptions.Underflow
                | (inexactU ? FpExceptions.Precision | (t_roundedUp ? FpExceptions.RoundedUp : 0) : 0);
            return new FpValue(FpClass.Finite, sign, eU, (ulong)(kU << (64 - p)));
        }

        if (ftz)
        {
            flags |= FpExceptions.Underflow | FpExceptions.Precision; // SDM Vol. 1 10.2.3.3
            return FpValue.Zero(sign);
        }

        var discard = 128 - p + (format.MinExponent - exp);
        var k = RoundBits(m, discard, sign, rc, out var inexact);
        if (inexact)
        {
            flags |= FpExceptions.Underflow | FpExceptions.Precision | (t_roundedUp ? FpExceptions.RoundedUp : 0);
        }

        if (k == 0)
        {
            return FpValue.Zero(sign);
        }

        // value = k * 2^(emin - p + 1); k <= 2^(p-1) fits in 64 bits.
        var lz = BitOperations.LeadingZeroCount((ulong)k);
        return new FpValue(FpClass.Finite, sign, format.MinExponent - p + 1 + (63 - lz), (ulong)k << lz);
    }

    /// <summary>Exception precedence (SDM Vol. 1 4.9.2 and 11.5.2): a NaN operand or an invalid operation hides the
    /// denormal-operand exception, and so does a zero divisor (observed on the host: denormal / 0 reports only ZE,
    /// NaN op denormal reports nothing or only IE). Apply to the flags of one operation.</summary>
    public static FpExceptions DenormalPrecedence(FpExceptions flags, FpValue x, FpValue y)
    {
        if ((flags & (FpExceptions.Invalid | FpExceptions.DivideByZero)) != 0 || x.IsNaN || y.IsNaN
            || x.Class == FpClass.Unsupported || y.Class == FpClass.Unsupported)
        {
            flags &= ~FpExceptions.Denormal;
        }

        return flags;
    }

    public static FpValue MaxFinite(bool sign, FpFormat format) =>
        new(FpClass.Finite, sign, format.MaxExponent, ulong.MaxValue << (64 - format.Precision));

    /// <summary>Drops the low <paramref name="discard"/> bits of m with IEEE rounding; the result may carry into
    /// one more bit.</summary>
    public static UInt128 RoundBits(UInt128 m, int discard, bool sign, RoundingMode rc, out bool inexact)
    {
        if (discard <= 0)
        {
            inexact = false;
            return m;
        }

        UInt128 kept;
        UInt128 rem;
        bool aboveHalf;
        bool atHalf;
        if (discard > 128)
        {
            kept = 0;
            rem = m;
            aboveHalf = false;
            atHalf = false;
        }
        else
        {
            kept = discard == 128 ? 0 : m >> discard;
            rem = discard == 128 ? m : m & ((UInt128.One << discard) - 1);
            var half = UInt128.One << (discard - 1);
            aboveHalf = rem > half;
            atHalf = rem == half;
        }

        inexact = rem != 0;
        if (!inexact)
        {
            return kept;
        }

        var up = rc switch
        {
            RoundingMode.Nearest => aboveHalf || (atHalf && (kept & 1) != 0),
            RoundingMode.Down => sign,
            RoundingMode.Up => !sign,
            _ => false,
        };
        t_roundedUp = up;
        return up ? kept + 1 : kept;
    }

    private static FpValue RoundFinite(bool sign, int exp, UInt128 m, FpFormat format, in FpEnv env,
        ref FpExceptions flags)
    {
        var lz = (int)UInt128.LeadingZeroCount(m);
        return Round(sign, exp - lz, m << lz, format, env.Rounding, env.FlushToZero, env.Masks, ref flags);
    }

    /// <summary>Rounds an already-unpacked finite value to a (narrower) format: FST m32/m64, CVTSD2SS, precision
    /// control. Specials pass through (NaN conversions are the caller's business).</summary>
    public static FpValue RoundTo(FpValue x, FpFormat format, in FpEnv env, ref FpExceptions flags) =>
        x.Class == FpClass.Finite
            ? Round(x.Sign, x.Exponent, (UInt128)x.Significand << 64, format, env.Rounding, env.FlushToZero,
                env.Masks, ref flags)
            : x;

    /// <summary>a + b (finite/zero/infinity only; NaNs handled by the caller).</summary>
    public static FpValue Add(FpValue a, FpValue b, FpFormat format, in FpEnv env, ref FpExceptions flags)
    {
        if (a.Class == FpClass.Infinity || b.Class == FpClass.Infinity)
        {
            if (a.Class == FpClass.Infinity && b.Class == FpClass.Infinity && a.Sign != b.Sign)
            {
                flags |= FpExceptions.Invalid;
                return FpValue.DefaultNaN;
            }

            return a.Class == FpClass.Infinity ? a : b;
        }

        if (a.Class == FpClass.Zero && b.Class == FpClass.Zero)
        {
            var sign = a.Sign == b.Sign ? a.Sign : env.Rounding == RoundingMode.Down;
            return FpValue.Zero(sign);
        }

        if (a.Class == FpClass.Zero)
        {
            return RoundTo(b, format, env, ref flags);
        }

        if (b.Class == FpClass.Zero)
        {
            return RoundTo(a, format, env, ref flags);
        }

        if (a.Exponent < b.Exponent || (a.Exponent == b.Exponent && a.Significand < b.Significand))
        {
            (a, b) = (b, a);
        }

        var d = a.Exponent - b.Exponent;
        var big = (UInt128)a.Significand << 64;
        var small = (UInt128)b.Significand << 64;
        if (d >= 128)
        {
            small = 1;
        }
        else if (d > 0)
        {
            var lost = small & ((UInt128.One << d) - 1);
            small >>= d;
            if (lost != 0)
            {
                small |= 1;
            }
        }

        if (a.Sign == b.Sign)
        {
            var sticky = small & 1;
            var sum = (big >> 1) + (small >> 1);
            sum |= sticky;
            return RoundFinite(a.Sign, a.Exponent + 1, sum, format, env, ref flags);
        }

        var diff = big - small;
        if (diff == 0)
        {
            return FpValue.Zero(env.Rounding == RoundingMode.Down);
        }

        return RoundFinite(a.Sign, a.Exponent, diff, format, env, ref flags);
    }

    public static FpValue Multiply(FpValue a, FpValue b, FpFormat format, in FpEnv env, ref FpExceptions flags)
    {
        var sign = a.Sign != b.Sign;
        if (a.Class == FpClass.Infinity || b.Class == FpClass.Infinity)
        {
            if (a.Class == FpClass.Zero || b.Class == FpClass.Zero)
            {
                flags |= FpExceptions.Invalid;
                return FpValue.DefaultNaN;
            }

            return FpValue.Infinity(sign);
        }

        if (a.Class == FpClass.Zero || b.Class == FpClass.Zero)
        {
            return FpValue.Zero(sign);
        }

        var product = (UInt128)a.Significand * b.Significand;
        return RoundFinite(sign, a.Exponent + b.Exponent + 1, product, format, env, ref flags);
    }

    public static FpValue Divide(FpValue a, FpValue b, FpFormat format, in FpEnv env, ref FpExceptions flags)
    {
        var sign = a.Sign != b.Sign;
        if (a.Class == FpClass.Infinity)
        {
            if (b.Class == FpClass.Infinity)
            {
                flags |= FpExceptions.Invalid;
                return FpValue.DefaultNaN;
            }

            return FpValue.Infinity(sign);
        }

        if (b.Class == FpClass.Infinity)
        {
            return FpValue.Zero(sign);
        }

        if (b.Class == FpClass.Zero)
        {
            if (a.Class == FpClass.Zero)
            {
                flags |= FpExceptions.Invalid;
                return FpValue.DefaultNaN;
            }

            flags |= FpExceptions.DivideByZero;
            return FpValue.Infinity(sign);
        }

        if (a.Class == FpClass.Zero)
        {
            return FpValue.Zero(sign);
        }

        var numerator = (UInt128)a.Significand << 64;
        var q = numerator / b.Significand;
        var r = numerator % b.Significand;
        var r2 = r << 62;
        var q2 = (q << 62) | (r2 / b.Significand);
        var sticky = r2 % b.Significand != 0;
        var lz = (int)UInt128.LeadingZeroCount(q2);
        var m = q2 << lz;
        if (sticky)
        {
            m |= 1;
        }

        return Round(sign, a.Exponent - b.Exponent + 1 - lz, m, format, env.Rounding, env.FlushToZero, env.Masks,
            ref flags);
    }

    public static FpValue Sqrt(FpValue a, FpFormat format, in FpEnv env, ref FpExceptions flags)
    {
        if (a.Class == FpClass.Zero)
        {
            return a;
        }

        if (a.Sign)
        {
            flags |= FpExceptions.Invalid;
            return FpValue.DefaultNaN;
        }

        if (a.Class == FpClass.Infinity)
        {
            return a;
        }

        // value = N * 2^E with N = significand, E = exponent - 63; make E even, then widen by 2^128.
        var n = new BigInteger(a.Significand);
        var e = a.Exponent - 63;
        if ((e & 1) != 0)
        {
            n <<= 1;
            e--;
        }

        var radicand = n << 128;
        e -= 128;
        var root = ISqrt(radicand);
        var exact = root * root == radicand;
        var rootBits = (UInt128)root;
        var lz = (int)UInt128.LeadingZeroCount(rootBits);
        var m = rootBits << lz;
        if (!exact)
        {
            m |= 1;
        }

        return Round(false, (e / 2) + 127 - lz, m, format, env.Rounding, env.FlushToZero, env.Masks, ref flags);
    }

    private static BigInteger ISqrt(BigInteger n)
    {
        var x = BigInteger.One << (int)((n.GetBitLength() + 1) / 2);
        while (true)
        {
            var y = (x + (n / x)) >> 1;
            if (y >= x)
            {
                return x;
            }

            x = y;
        }
    }

    /// <summary>Ordered comparison result: -1 less, 0 equal, 1 greater; null when unordered (NaN operand).</summary>
    public static int? Compare(FpValue a, FpValue b)
    {
        if (a.IsNaN || b.IsNaN || a.Class == FpClass.Unsupported || b.Class == FpClass.Unsupported)
        {
            return null;
        }

        if (a.Class == FpClass.Zero && b.Class == FpClass.Zero)
        {
            return 0;
        }

        var ka = Key(a);
        var kb = Key(b);
        return ka.CompareTo(kb);
    }

    /// <summary>A totally ordered key for non-NaN values: sign-magnitude folded into a signed 128-bit integer.</summary>
    private static Int128 Key(FpValue v)
    {
        Int128 magnitude = v.Class switch
        {
            FpClass.Zero => 0,
            FpClass.Infinity => Int128.MaxValue,
            _ => ((Int128)(v.Exponent + 0x10000) << 64) | v.Significand,
        };
        return v.Sign ? -magnitude : magnitude;
    }

    /// <summary>Converts to a signed integer of <paramref name="bits"/> (16, 32, 64). Out of range or NaN gives the
    /// "integer indefinite" 1 &lt;&lt; (bits - 1) with Invalid (SDM Vol. 1 4.8.3.7).</summary>
    public static long ToInteger(FpValue x, int bits, RoundingMode rc, ref FpExceptions flags)
    {
        var indefinite = long.MinValue >> (64 - bits);
        switch (x.Class)
        {
            case FpClass.Zero:
                return 0;
            case FpClass.Finite:
                break;
            default:
                flags |= FpExceptions.Invalid;
                return indefinite;
        }

        if (x.Exponent >= 64)
        {
            flags |= FpExceptions.Invalid;
            return indefinite;
        }

        var m = (UInt128)x.Significand << 64;
        var magnitude = RoundBits(m, 127 - x.Exponent, x.Sign, rc, out var inexact);
        var limit = (UInt128)1 << (bits - 1);
        if (magnitude > limit || (magnitude == limit && !x.Sign))
        {
            flags |= FpExceptions.Invalid;
            return indefinite;
        }

        if (inexact)
        {
            flags |= FpExceptions.Precision | (t_roundedUp ? FpExceptions.RoundedUp : 0);
        }

        var value = (long)(ulong)magnitude;
        return x.Sign ? -value : value;
    }

    /// <summary>Converts a signed integer exactly to an unpacked value (rounding happens when packing).</summary>
    public static FpValue FromInteger(long value)
    {
        if (value == 0)
        {
            return FpValue.Zero(false);
        }

        var sign = value < 0;
        var magnitude = sign ? (ulong)-value : (ulong)value;
        var lz = BitOperations.LeadingZeroCount(magnitude);
        return new FpValue(FpClass.Finite, sign, 63 - lz, magnitude << lz);
    }

    /// <summary>Rounds to an integral value in the same format (FRNDINT, ROUNDSS-like); Precision when inexact.</summary>
    public static FpValue RoundToIntegral(FpValue x, RoundingMode rc, ref FpExceptions flags)
    {
        if (x.Class != FpClass.Finite || x.Exponent >= 63)
        {
            return x;
        }

        var m = (UInt128)x.Significand << 64;
        var k = RoundBits(m, 127 - x.Exponent, x.Sign, rc, out var inexact);
        if (inexact)
        {
            flags |= FpExceptions.Precision | (t_roundedUp ? FpExceptions.RoundedUp : 0);
        }

        if (k == 0)
        {
            return FpValue.Zero(x.Sign);
        }

        var lz = (int)UInt128.LeadingZeroCount(k);
        return new FpValue(FpClass.Finite, x.Sign, 127 - lz, (ulong)((k << lz) >> 64));
    }

    // ---- Packing and unpacking (SDM Vol. 1 4.2.2, Table 4-3) ----

    public static FpValue UnpackSingle(uint bits, bool daz, ref FpExceptions flags)
    {
        var sign = (bits >> 31) != 0;
        var exp = (int)((bits >> 23) & 0xFF);
        var frac = (ulong)(bits & 0x7F_FFFF);
        return UnpackIeee(sign, exp, frac, 23, 127, 0xFF, daz, ref flags);
    }

    public static FpValue UnpackDouble(ulong bits, bool daz, ref FpExceptions flags)
    {
        var sign = (bits >> 63) != 0;
        var exp = (int)((bits >> 52) & 0x7FF);
        var frac = bits & 0xF_FFFF_FFFF_FFFF;
        return UnpackIeee(sign, exp, frac, 52, 1023, 0x7FF, daz, ref flags);
    }

    private static FpValue UnpackIeee(bool sign, int exp, ulong frac, int fracBits, int bias, int maxExp, bool daz,
        ref FpExceptions flags)
    {
        var align = 63 - fracBits;
        if (exp == maxExp)
        {
            if (frac == 0)
            {
                return FpValue.Infinity(sign);
            }

            var payload = frac << (align + 1);
            var quiet = (payload & (1UL << 63)) != 0;
            return new FpValue(quiet ? FpClass.QuietNaN : FpClass.SignalingNaN, sign, 0, payload);
        }

        if (exp == 0)
        {
            if (frac == 0)
            {
                return FpValue.Zero(sign);
            }

            if (daz)
            {
                return FpValue.Zero(sign);
            }

            flags |= FpExceptions.Denormal;
            var lz = BitOperations.LeadingZeroCount(frac << align);
            return new FpValue(FpClass.Finite, sign, 1 - bias - lz, frac << (align + lz));
        }

        return new FpValue(FpClass.Finite, sign, exp - bias, (1UL << 63) | (frac << align));
    }

    public static FpValue UnpackExtended(Float80 v, ref FpExceptions flags)
    {
        var sign = v.Sign;
        var exp = v.Exponent;
        var sig = v.Significand;
        if (exp == Float80.MaxExponent)
        {
            if ((sig & Float80.IntegerBit) == 0)
            {
                return new FpValue(FpClass.Unsupported, sign, 0, 0);
            }

            if ((sig << 1) == 0)
            {
                return FpValue.Infinity(sign);
            }

            var payload = sig << 1;
            return new FpValue((payload & (1UL << 63)) != 0 ? FpClass.QuietNaN : FpClass.SignalingNaN, sign, 0,
                payload);
        }

        if (exp == 0)
        {
            if (sig == 0)
            {
                return FpValue.Zero(sign);
            }

            // Denormal or pseudo-denormal: both have the value sig * 2^(-16382-63).
            flags |= FpExceptions.Denormal;
            var lz = BitOperations.LeadingZeroCount(sig);
            return new FpValue(FpClass.Finite, sign, -16382 - lz, sig << lz);
        }

        if ((sig & Float80.IntegerBit) == 0)
        {
            return new FpValue(FpClass.Unsupported, sign, 0, 0);
        }

        return new FpValue(FpClass.Finite, sign, exp - Float80.ExponentBias, sig);
    }

    public static uint PackSingle(FpValue v) => (uint)PackIeee(v, 23, 127, 0xFF, 32);

    public static ulong PackDouble(FpValue v) => PackIeee(v, 52, 1023, 0x7FF, 64);

    private static ulong PackIeee(FpValue v, int fracBits, int bias, ulong maxExp, int width)
    {
        var sign = v.Sign ? 1UL << (width - 1) : 0;
        var align = 63 - fracBits;
        var fracMask = (1UL << fracBits) - 1;
        switch (v.Class)
        {
            case FpClass.Zero:
                return sign;
            case FpClass.Infinity:
                return sign | (maxExp << fracBits);
            case FpClass.QuietNaN:
            case FpClass.SignalingNaN:
            case FpClass.Unsupported:
            {
                var frac = (v.Significand >> (align + 1)) & fracMask;
                if (frac == 0)
                {
                    frac = 1UL << (fracBits - 1); // A NaN must keep a nonzero fraction; quiet it.
                }

                return sign | (maxExp << fracBits) | frac;
            }
        }

        var minExp = 1 - bias;
        if (v.Exponent >= minExp)
        {
            var biased = (ulong)(v.Exponent + bias) & maxExp;
            return sign | (biased << fracBits) | ((v.Significand >> align) & fracMask);
        }

        var shift = minExp - v.Exponent;
        var denormal = shift >= 64 ? 0 : (v.Significand >> align) >> shift;
        return sign | (denormal & fracMask);
    }

    public static Float80 PackExtended(FpValue v)
    {
        var sign = (ushort)(v.Sign ? 0x8000 : 0);
        switch (v.Class)
        {
            case FpClass.Zero:
                return new Float80(0, sign);
            case FpClass.Infinity:
                return new Float80(Float80.IntegerBit, (ushort)(sign | Float80.MaxExponent));
            case FpClass.QuietNaN:
            case FpClass.SignalingNaN:
            case FpClass.Unsupported:
                var payload = v.Significand >> 1;
                if (payload == 0)
                {
                    payload = Float80.QuietBit;
                }

                return new Float80(Float80.IntegerBit | payload, (ushort)(sign | Float80.MaxExponent));
        }

        if (v.Exponent >= -16382)
        {
            return new Float80(v.Significand, (ushort)(sign | ((v.Exponent + Float80.ExponentBias) & 0x7FFF)));
        }

        var shift = -16382 - v.Exponent;
        return new Float80(shift >= 64 ? 0 : v.Significand >> shift, sign);
    }
}
