namespace Ringvisor.Emulator.Fpu;

/// <summary>A binary floating-point destination: precision p (significand bits including the integer bit) and the
/// exponent range. x87 precision control keeps the 15-bit exponent range with a 24- or 53-bit significand
/// (SDM Vol. 1 8.1.5.2).</summary>
internal readonly record struct FpFormat(int Precision, int Bias)
{
    public static readonly FpFormat Single = new(24, 127);
    public static readonly FpFormat Double = new(53, 1023);
    public static readonly FpFormat Extended = new(64, 16383);
    public static readonly FpFormat ExtendedPc24 = new(24, 16383);
    public static readonly FpFormat ExtendedPc53 = new(53, 16383);

    public int MinExponent => 1 - Bias;

    public int MaxExponent => Bias;
}
