namespace Ringvisor.Emulator.Fpu;

/// <summary>IEEE exception flags in the bit positions shared by FSW bits 0-5 and MXCSR bits 0-5
/// (SDM Vol. 1 8.1.3, 10.2.3).</summary>
[Flags]
internal enum FpExceptions : byte
{
    None = 0,
    Invalid = 1 << 0,
    Denormal = 1 << 1,
    DivideByZero = 1 << 2,
    Overflow = 1 << 3,
    Underflow = 1 << 4,
    Precision = 1 << 5,

    /// <summary>Not architectural: the inexact result was rounded away from zero (x87 reports it in C1).
    /// Masked off before flags reach MXCSR/FSW.</summary>
    RoundedUp = 1 << 6,

    /// <summary>The six architectural flags.</summary>
    Architectural = 0x3F,
}
