namespace Ringvisor.Net.Switching;

/// <summary>
/// A snapshot of one port's counters. Rx = frames the switch received from the port, Tx = frames it sent to the
/// port; drops count frames that arrived on or were bound for the port and went nowhere.
/// </summary>
public sealed record PortCounters(long RxFrames, long RxBytes, long TxFrames, long TxBytes, long RxDropped, long TxDropped, long Malformed);
