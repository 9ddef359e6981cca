namespace Ringvisor.Core.Net;

/// <summary>Called by an <see cref="INetworkBackend"/> with one received frame; the span is valid only during the call.</summary>
public delegate void NetworkFrameReceiver(ReadOnlySpan<byte> frame);
