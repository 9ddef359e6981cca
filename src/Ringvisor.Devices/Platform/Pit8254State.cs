namespace Ringvisor.Devices.Platform;

/// <summary>Saved state of <see cref="Pit8254"/> (version 1): three counters and port 0x61's writable bits.</summary>
public sealed record Pit8254State(int Version, IReadOnlyList<PitChannelState> Channels, byte PortB);
