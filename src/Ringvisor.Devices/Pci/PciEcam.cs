// PCI Express enhanced configuration access (PCIe 4.0 §7.2.2): a memory window where address bits 27:20 select the
// bus, 19:15 the device, 14:12 the function and 11:0 the register. Register at MemoryLayout.PciEcamBase.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Memory;

namespace Ringvisor.Devices.Pci;

public sealed class PciEcam : IBusDevice
{
    private readonly PciBus _bus;

    public PciEcam(PciBus bus, ulong size = MemoryLayout.PciEcamSize)
    {
        _bus = bus;
        Size = size;
    }

    public ulong Size { get; }

    public void Read(ulong offset, Span<byte> data)
    {
        if (!TryDecode(offset, data.Length, out var fn, out int reg))
        {
            data.Fill(0xFF);
            return;
        }

        _bus.ReadConfig(fn, reg, data);
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (TryDecode(offset, data.Length, out var fn, out int reg))
        {
            _bus.WriteConfig(fn, reg, data);
        }
    }

    private bool TryDecode(ulong offset, int length, out PciAddress fn, out int register)
    {
        fn = new PciAddress((byte)((offset >> 20) & 0xFF), (byte)((offset >> 15) & 0x1F), (byte)((offset >> 12) & 0x7));
        register = (int)(offset & 0xFFF);

        // An access may not cross into the next function's 4 KiB.
        return offset < Size && register + length <= PciConfigSpace.Size;
    }
}
