namespace Ringvisor.Emulator.Fpu;

/// <summary>The rounding environment of one operation: RC, exception masks (for the overflow/underflow responses)
/// and FTZ (SSE only).</summary>
internal readonly record struct FpEnv(RoundingMode Rounding, FpExceptions Masks, bool FlushToZero)
{
    /// <summary>From MXCSR (SDM Vol. 1 Figure 10-3): masks bits 7-12, RC bits 13-14, FZ bit 15.</summary>
    public static FpEnv FromMxcsr(uint mxcsr) =>
        new((RoundingMode)((mxcsr >> 13) & 3), (FpExceptions)((mxcsr >> 7) & 0x3F), (mxcsr & 0x8000) != 0);

    /// <summary>From FCW (SDM Vol. 1 Figure 8-6): masks bits 0-5, RC bits 10-11.</summary>
    public static FpEnv FromFcw(ushort fcw) => new((RoundingMode)((fcw >> 10) & 3), (FpExceptions)(fcw & 0x3F), false);
}
