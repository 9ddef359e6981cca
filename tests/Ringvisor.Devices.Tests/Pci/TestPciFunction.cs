// A PCI function with one BAR of each kind and MSI-X, for bus-level tests.
using Ringvisor.Devices.Pci;

namespace Ringvisor.Devices.Tests.Pci;

internal sealed class TestPciFunction : PciFunction
{
    public TestPciFunction()
        : base("test", 0x1234, 0x5678, 0xFF_00_00)
    {
        Mem32 = new ScratchRegisters(0x1000);
        Mem64 = new ScratchRegisters(0x4000);
        Io = new ScratchRegisters(0x20);
        DefineBar(0, PciBarKind.Memory32, 0x1000, Mem32);
        DefineBar(2, PciBarKind.Memory64, 0x4000, Mem64);
        DefineBar(4, PciBarKind.Io, 0x20, Io);
        var msix = AddMsix(4, 5, 0, 0x800);
        DefineBar(5, PciBarKind.Memory32, 0x1000, msix);
    }

    public ScratchRegisters Mem32 { get; }

    public ScratchRegisters Mem64 { get; }

    public ScratchRegisters Io { get; }
}
