namespace Ringvisor.Emulator.Fpu;

/// <summary>
/// An unpacked floating-point value. Finite nonzero values are normalized: value = Significand / 2^63 * 2^Exponent
/// with bit 63 set. NaNs keep their fraction left-aligned in <see cref="Significand"/> (bit 63 = quiet bit) so that
/// payloads survive format conversions the way x86 truncates/extends them.
/// </summary>
internal readonly record struct FpValue(FpClass Class, bool Sign, int Exponent, ulong Significand)
{
    public bool IsNaN => Class is FpClass.QuietNaN or FpClass.SignalingNaN;

    public static FpValue Zero(bool sign) => new(FpClass.Zero, sign, 0, 0);

    public static FpValue Infinity(bool sign) => new(FpClass.Infinity, sign, 0, 0);

    public static FpValue FromOne() => new(FpClass.Finite, false, 0, 1UL << 63);

    /// <summary>The default NaN ("QNaN floating-point indefinite", SDM Vol. 1 Table 4-3): negative, quiet, no payload.</summary>
    public static FpValue DefaultNaN => new(FpClass.QuietNaN, true, 0, 1UL << 63);

    public FpValue Quieted() => new(FpClass.QuietNaN, Sign, Exponent, Significand | (1UL << 63));

    public FpValue Negated() => this with { Sign = !Sign };
}
