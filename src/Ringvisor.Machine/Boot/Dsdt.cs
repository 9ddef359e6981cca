// The DSDT (ACPI 6.4 §5.2.11.1): the ACPI namespace Linux needs once it runs the ACPI interpreter.
//
//   \_SB.PCI0   the PCI host bridge (_HID PNP0A03): bus 0, its _CRS (bus numbers, the configuration ports, the I/O
//               ranges around them, the legacy VGA hole and the 32-bit BAR window), and a _PRT giving every slot's
//               INTA#..INTD# its IOAPIC GSI directly (no link devices), as PciBus wires them (GSI 16 + link).
//   \_S5        the soft-off sleep type for PM1a_CNT.SLP_TYP, so Linux powers off through ACPI.
//
// A _PRT entry with a zero Source names a GSI that is level-triggered, active-low (ACPI 6.4 §6.2.13); the interrupt
// controllers here treat lines as logical assertion levels, so the polarity the guest programs needs no inversion.
using Ringvisor.Core.Memory;
using Ringvisor.Devices.Pci;

namespace Ringvisor.Machine.Boot;

internal static class Dsdt
{
    /// <summary>The SLP_TYP value of S5 (soft off) that \_S5 announces and <see cref="AcpiPmRegisters"/> acts on.</summary>
    public const byte SoftOffSleepType = 5;

    /// <summary>PCI configuration mechanism #1 ports 0xCF8-0xCFF (PCI 3.0 §3.2.2.3.2), consumed by the bridge itself.</summary>
    private const ushort ConfigPorts = 0xCF8;

    /// <summary>The legacy VGA memory hole the bridge forwards (PCI-to-PCI bridge 1.2 §4.5).</summary>
    private const uint VgaStart = 0xA_0000, VgaEnd = 0xB_FFFF;

    /// <summary>The table body (AML after the header).</summary>
    public static byte[] Build()
    {
        var crs = Aml.Concat(
            AcpiResources.BusNumbers(0, 0xFF),
            AcpiResources.IoPort(ConfigPorts, 8),
            AcpiResources.IoWindow(0x0000, ConfigPorts - 1),
            AcpiResources.IoWindow(ConfigPorts + 8, 0xFFFF),
            AcpiResources.MemoryWindow(VgaStart, VgaEnd, cacheable: true),
            AcpiResources.MemoryWindow((uint)MemoryLayout.PciMmioBase, (uint)(MemoryLayout.PciMmioBase + MemoryLayout.PciMmioSize - 1), cacheable: false),
            AcpiResources.EndTag());

        var prt = new List<byte[]>();
        foreach (var route in PciBus.AllRoutes())
        {
            // ACPI 6.4 Table 6.2.13: Address = (device << 16) | 0xFFFF (any function), Pin 0 = INTA#, Source 0, GSI.
            prt.Add(Aml.Package(
                Aml.Integer(((ulong)route.Device << 16) | 0xFFFF),
                Aml.Integer((ulong)(route.Pin - 1)),
                Aml.Integer(0),
                Aml.Integer((ulong)route.Gsi)));
        }

        var pci0 = Aml.Device("PCI0",
            Aml.Name("_HID", Aml.EisaId("PNP0A03")),
            Aml.Name("_ADR", Aml.Integer(0)),
            Aml.Name("_UID", Aml.Integer(0)),
            Aml.Name("_BBN", Aml.Integer(0)),
            Aml.Name("_CRS", Aml.Buffer(crs)),
            Aml.Name("_PRT", Aml.Package([.. prt])));

        // ACPI 6.4 §7.4.2: \_S5 = Package { SLP_TYPa, SLP_TYPb, reserved, reserved }.
        var s5 = Aml.Name("\\_S5", Aml.Package(Aml.Integer(SoftOffSleepType), Aml.Integer(SoftOffSleepType), Aml.Integer(0), Aml.Integer(0)));
        return Aml.Concat(Aml.Scope("\\_SB", pci0), s5);
    }
}
