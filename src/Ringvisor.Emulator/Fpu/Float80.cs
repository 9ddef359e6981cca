namespace Ringvisor.Emulator.Fpu;

/// <summary>
/// An x87 80-bit double-extended value (Intel SDM Vol. 1 4.2.2, Table 4-3): sign, 15-bit biased exponent (bias
/// 16383) and a 64-bit significand whose bit 63 is the explicit integer bit J. Encodings with J = 0 and a nonzero
/// exponent (unnormals, pseudo-NaNs, pseudo-infinities) are "unsupported" and raise invalid on use.
/// </summary>
public readonly record struct Float80(ulong Significand, ushort SignExponent)
{
    public const int ExponentBias = 16383;
    public const ushort MaxExponent = 0x7FFF;
    public const ulong IntegerBit = 1UL << 63;
    public const ulong QuietBit = 1UL << 62;

    /// <summary>The default QNaN "real indefinite" (SDM Vol. 1 Table 4-3): negative, quiet, fraction 0.</summary>
    public static Float80 Indefinite => new(0xC000_0000_0000_0000, 0xFFFF);

    public static Float80 Zero => new(0, 0);

    public static Float80 One => new(IntegerBit, ExponentBias);

    public bool Sign => (SignExponent & 0x8000) != 0;

    public int Exponent => SignExponent & MaxExponent;

    public bool IsZero => Exponent == 0 && Significand == 0;

    /// <summary>Exponent 0, J = 0, fraction nonzero.</summary>
    public bool IsDenormal => Exponent == 0 && Significand != 0 && (Significand & IntegerBit) == 0;

    /// <summary>Exponent 0 with J = 1: the CPU accepts it as an operand (value 2^-16382 scaled) and flags denormal.</summary>
    public bool IsPseudoDenormal => Exponent == 0 && (Significand & IntegerBit) != 0;

    public bool IsInfinity => Exponent == MaxExponent && Significand == IntegerBit;

    public bool IsNaN => Exponent == MaxExponent && (Significand & IntegerBit) != 0 && (Significand << 1) != 0;

    public bool IsSignalingNaN => IsNaN && (Significand & QuietBit) == 0;

    /// <summary>Nonzero exponent with J = 0 (unnormal, pseudo-infinity, pseudo-NaN): invalid operand on 387+.</summary>
    public bool IsUnsupported => Exponent != 0 && (Significand & IntegerBit) == 0;

    public Float80 Negate() => new(Significand, (ushort)(SignExponent ^ 0x8000));

    public Float80 Abs() => new(Significand, (ushort)(SignExponent & MaxExponent));

    public Float80 Quieted() => new(Significand | QuietBit, SignExponent);

    public static Float80 Infinity(bool negative) => new(IntegerBit, (ushort)(negative ? 0xFFFF : MaxExponent));

    public static Float80 SignedZero(bool negative) => new(0, (ushort)(negative ? 0x8000 : 0));
}
