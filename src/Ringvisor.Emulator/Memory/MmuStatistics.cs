namespace Ringvisor.Emulator.Memory;

/// <summary>A snapshot of one MMU's counters, for --stats.</summary>
/// <param name="TlbHits">Accesses satisfied from the TLB (fast and slow path).</param>
/// <param name="TlbMisses">Accesses whose TLB lookup missed and needed a page walk.</param>
/// <param name="PageWalks">Page-table walks performed (a miss can walk more than once when A/D updates race).</param>
/// <param name="PageFaults">Faults returned (#PF and non-canonical).</param>
/// <param name="Flushes">Whole-TLB flushes (CR3 loads, paging-mode changes, requests).</param>
/// <param name="PageInvalidations">INVLPG-style single-page invalidations.</param>
/// <param name="DeviceAccesses">Accesses that went to the MMIO bus (not RAM, not the per-vCPU hook page).</param>
public readonly record struct MmuStatistics(
    long TlbHits, long TlbMisses, long PageWalks, long PageFaults, long Flushes, long PageInvalidations, long DeviceAccesses);
