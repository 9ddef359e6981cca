namespace Ringvisor.Emulator.Fpu;

/// <summary>Operand classes after unpacking (SDM Vol. 1 4.8.3).</summary>
internal enum FpClass : byte
{
    Zero,
    Finite,
    Infinity,
    QuietNaN,
    SignalingNaN,

    /// <summary>x87 unnormal / pseudo-NaN / pseudo-infinity: always an invalid operand.</summary>
    Unsupported,
}
