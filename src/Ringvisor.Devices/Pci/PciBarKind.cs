namespace Ringvisor.Devices.Pci;

/// <summary>What a base address register decodes (PCI Local Bus 3.0 §6.2.5.1).</summary>
public enum PciBarKind
{
    /// <summary>32-bit memory space (type 00b).</summary>
    Memory32,

    /// <summary>64-bit memory space (type 10b); also consumes the next BAR slot for the upper half.</summary>
    Memory64,

    /// <summary>I/O space (bit 0 = 1).</summary>
    Io,
}
