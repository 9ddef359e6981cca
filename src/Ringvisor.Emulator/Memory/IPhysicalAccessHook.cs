namespace Ringvisor.Emulator.Memory;

/// <summary>
/// A per-vCPU claim on guest-physical pages that the MMU consults before RAM and the MMIO bus: the xAPIC page is
/// private to each CPU (Intel SDM Vol. 3A §10.4.1), so it cannot live on the shared bus. A claimed page never gets a
/// fast-path TLB entry. When the set of claimed pages changes (IA32_APIC_BASE written) the core must call
/// <see cref="Mmu.FlushAll"/>, because RAM pages may already be cached in the TLB.
/// </summary>
public interface IPhysicalAccessHook
{
    /// <summary>True when the 4 KiB page containing <paramref name="physicalAddress"/> is claimed.</summary>
    bool Claims(ulong physicalAddress);

    /// <summary>Reads 1, 2, 4 or 8 naturally aligned bytes from a claimed page.</summary>
    void Read(ulong physicalAddress, Span<byte> data);

    /// <summary>Writes 1, 2, 4 or 8 naturally aligned bytes to a claimed page.</summary>
    void Write(ulong physicalAddress, ReadOnlySpan<byte> data);
}
