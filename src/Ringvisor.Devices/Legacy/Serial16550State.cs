namespace Ringvisor.Devices.Legacy;

/// <summary>Saved state of <see cref="Serial16550"/> (version 1), including input not yet taken into the RX FIFO.</summary>
public sealed record Serial16550State(
    int Version,
    ushort Divisor,
    byte Ier,
    byte Fcr,
    byte Lcr,
    byte Mcr,
    byte LsrErrors,
    byte MsrDeltas,
    byte Scr,
    bool ThrInterruptPending,
    IReadOnlyList<byte> RxFifo,
    IReadOnlyList<byte> HeldInput);
