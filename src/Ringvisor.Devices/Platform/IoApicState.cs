namespace Ringvisor.Devices.Platform;

/// <summary>Saved state of <see cref="IoApic"/> (version 1): 24 redirection entries (remote IRR included) and the pin levels.</summary>
public sealed record IoApicState(int Version, byte Id, uint RegisterSelect, IReadOnlyList<ulong> Redirection, uint PinLevels);
