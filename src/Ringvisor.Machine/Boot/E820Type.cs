namespace Ringvisor.Machine.Boot;

/// <summary>Address range types of the BIOS E820 map (ACPI 6.5 §15.3, "Address Range Types").</summary>
public enum E820Type : uint
{
    Ram = 1,
    Reserved = 2,
    AcpiReclaimable = 3,
    AcpiNvs = 4,
    Unusable = 5,
}
