namespace Ringvisor.Devices.Platform;

/// <summary>Saved state of one 8259A (version 1).</summary>
public sealed record Pic8259State(
    byte Irr,
    byte Isr,
    byte Imr,
    byte Elcr,
    byte LineLevels,
    byte VectorBase,
    byte PriorityAdd,
    int InitStep,
    bool ExpectIcw4,
    bool SingleMode,
    bool AutoEoi,
    bool RotateOnAutoEoi,
    bool SpecialMask,
    bool SpecialFullyNested,
    bool ReadIsr,
    bool Poll);
