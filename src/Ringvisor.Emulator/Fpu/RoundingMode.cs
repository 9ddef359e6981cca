namespace Ringvisor.Emulator.Fpu;

/// <summary>The RC field encoding of FCW bits 10-11 and MXCSR bits 13-14 (SDM Vol. 1 Table 4-8).</summary>
internal enum RoundingMode
{
    Nearest = 0,
    Down = 1,
    Up = 2,
    TowardZero = 3,
}
