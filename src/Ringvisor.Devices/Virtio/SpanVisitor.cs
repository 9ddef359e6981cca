namespace Ringvisor.Devices.Virtio;

/// <summary>Receives one guest-memory span of a chain and its position in the visited range; false stops the walk.</summary>
public delegate bool SpanVisitor(Span<byte> span, ulong position);
