namespace Ringvisor.Devices.Platform;

/// <summary>Saved state of <see cref="Pic8259Pair"/> (version 1).</summary>
public sealed record Pic8259PairState(int Version, Pic8259State Master, Pic8259State Slave);
