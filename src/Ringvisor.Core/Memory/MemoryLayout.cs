// The PC memory map Ringvisor presents: RAM below the 32-bit PCI hole, the rest above 4 GiB.
namespace Ringvisor.Core.Memory;

public static class MemoryLayout
{
    /// <summary>Start of the 32-bit MMIO hole (PCI BARs, IOAPIC, LAPIC, ECAM); RAM above this moves to 4 GiB.</summary>
    public const ulong PciHoleStart = 0xC000_0000;

    /// <summary>Where RAM resumes above the hole.</summary>
    public const ulong HighMemoryStart = 0x1_0000_0000;

    /// <summary>Local APIC default base (Intel SDM Vol. 3A §10.4.1).</summary>
    public const ulong LocalApicBase = 0xFEE0_0000;

    /// <summary>IOAPIC default base (82093AA datasheet).</summary>
    public const ulong IoApicBase = 0xFEC0_0000;

    /// <summary>PCI Express ECAM window (256 buses x 1 MiB would be 256 MiB; we expose bus 0..15 = 16 MiB).</summary>
    public const ulong PciEcamBase = 0xE000_0000;
    public const ulong PciEcamSize = 0x0100_0000;

    /// <summary>Window handed out to 32-bit PCI memory BARs.</summary>
    public const ulong PciMmioBase = 0xC000_0000;
    public const ulong PciMmioSize = 0x2000_0000;

    public const ulong PageSize = 4096;

    /// <summary>Splits <paramref name="ramSize"/> bytes of RAM into (gpa, size) ranges around the PCI hole.</summary>
    public static IReadOnlyList<(ulong Gpa, ulong Size)> Split(ulong ramSize)
    {
        if (ramSize <= PciHoleStart)
        {
            return [(0, ramSize)];
        }

        return [(0, PciHoleStart), (HighMemoryStart, ramSize - PciHoleStart)];
    }
}
