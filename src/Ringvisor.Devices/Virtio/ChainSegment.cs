namespace Ringvisor.Devices.Virtio;

/// <summary>One buffer of a descriptor chain, already checked to lie inside guest RAM.</summary>
public readonly record struct ChainSegment(ulong Address, uint Length);
