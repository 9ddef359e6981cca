namespace Ringvisor.Devices.Pci;

/// <summary>
/// Where INTx pin <paramref name="Pin"/> (1 = INTA# .. 4 = INTD#) of device <paramref name="Device"/> on bus 0 is
/// wired: a level-triggered, active-high GSI. The machine turns these into MP-table I/O interrupt entries
/// (source bus = PCI, source IRQ = (Device &lt;&lt; 2) | (Pin - 1), MP spec 1.4 §4.3.4) or ACPI _PRT entries.
/// </summary>
public readonly record struct PciIrqRoute(byte Device, byte Pin, int Gsi)
{
    /// <summary>The ISA IRQ the pin also drives (PIC-mode guests), or -1 when the bus routes INTx to the IOAPIC only.</summary>
    public int IsaIrq { get; init; } = -1;

    /// <summary>The MP-table source bus IRQ encoding for PCI (MP spec 1.4 §D.3).</summary>
    public byte MpSourceIrq => (byte)((Device << 2) | (Pin - 1));
}
