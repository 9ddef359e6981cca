namespace Ringvisor.Devices.Legacy;

/// <summary>Saved state of <see cref="I8042"/> (version 1). Output bytes carry bit 8 set when they came from the AUX port.</summary>
public sealed record I8042State(
    int Version,
    byte CommandByte,
    byte OutputPort,
    byte Status,
    int PendingCommand,
    int KeyboardPendingCommand,
    bool KeyboardScanning,
    IReadOnlyList<ushort> Output);
