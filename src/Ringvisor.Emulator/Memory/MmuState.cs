// The MMU's architectural state for snapshots and migration (design principle 4). The TLB is a cache and is not
// saved; the PAE PDPTE registers are state (SDM Vol. 3A §4.4.1: loaded at CR3 load, not re-read from memory).
namespace Ringvisor.Emulator.Memory;

/// <summary>Version 1: the paging controls and the four PDPTE registers.</summary>
public sealed record MmuState(int Version, PagingState Paging, ulong Pdpte0, ulong Pdpte1, ulong Pdpte2, ulong Pdpte3, bool Supports1GbPages)
{
    public const int CurrentVersion = 1;
}
