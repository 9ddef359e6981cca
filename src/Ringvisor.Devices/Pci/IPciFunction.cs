namespace Ringvisor.Devices.Pci;

/// <summary>
/// One PCI function as the bus sees it: configuration space, the BARs to map, and attachment to interrupts.
/// <see cref="PciFunction"/> is the usual base class.
/// </summary>
public interface IPciFunction
{
    string Name { get; }

    PciConfigSpace Config { get; }

    /// <summary>Implemented BARs (absent indices decode nothing).</summary>
    IReadOnlyList<PciBar> Bars { get; }

    /// <summary>Whether the function raises INTx (its interrupt pin register is INTA#).</summary>
    bool UsesIntx { get; }

    /// <summary>Called once by the bus when the function is placed at an address.</summary>
    void Attach(PciFunctionContext context);

    /// <summary>Guest configuration read (any width, any offset in 0..4095; serialised by the bus).</summary>
    void ReadConfig(int offset, Span<byte> data);

    /// <summary>Guest configuration write; the bus remaps BARs afterwards.</summary>
    void WriteConfig(int offset, ReadOnlySpan<byte> data);
}
