namespace Ringvisor.Net.Switching;

/// <summary>Delivers a frame out of a switch port; false when it was dropped (queue full, peer gone).</summary>
public delegate bool SwitchPortTransmit(ReadOnlySpan<byte> frame);
