// The pieces of a machine a device test needs: guest RAM, PIO and MMIO buses, a PCI bus with mechanism #1 and
// ECAM registered where the machine will put them, and a recording interrupt controller.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Memory;
using Ringvisor.Devices.Pci;

namespace Ringvisor.Devices.Tests.Virtio.Driver;

internal sealed class TestMachine : IDisposable
{
    public TestMachine(ulong ramBytes = 16 << 20)
    {
        Memory = GuestMemory.Create(ramBytes);
        Pio = new IoBus("pio", 0x1_0000);
        Mmio = new IoBus("mmio", 1UL << 48);
        Interrupts = new FakeInterruptController();
        Pci = new PciBus(Pio, Mmio, Interrupts);
        Pio.Register(PciConfigMechanism1.BasePort, PciConfigMechanism1.Length, new PciConfigMechanism1(Pci), "pci-cf8");
        Mmio.Register(MemoryLayout.PciEcamBase, MemoryLayout.PciEcamSize, new PciEcam(Pci), "pci-ecam");
        Allocator = new GuestAllocator(Memory, 1 << 20);
    }

    public GuestMemory Memory { get; }

    public IoBus Pio { get; }

    public IoBus Mmio { get; }

    public FakeInterruptController Interrupts { get; }

    public PciBus Pci { get; }

    public GuestAllocator Allocator { get; }

    public uint ConfigRead32(PciAddress a, int reg)
    {
        Span<byte> b = stackalloc byte[4];
        Pio.Write(0xCF8, BitConverter.GetBytes(PciConfigAddress.Encode(a, reg)));
        Pio.Read(0xCFC, b);
        return BitConverter.ToUInt32(b);
    }

    public void ConfigWrite32(PciAddress a, int reg, uint value)
    {
        Pio.Write(0xCF8, BitConverter.GetBytes(PciConfigAddress.Encode(a, reg)));
        Pio.Write(0xCFC, BitConverter.GetBytes(value));
    }

    public ushort ConfigRead16(PciAddress a, int reg)
    {
        Span<byte> b = stackalloc byte[2];
        Pio.Write(0xCF8, BitConverter.GetBytes(PciConfigAddress.Encode(a, reg & ~3)));
        Pio.Read(0xCFC + (ulong)(reg & 3), b);
        return BitConverter.ToUInt16(b);
    }

    public void ConfigWrite16(PciAddress a, int reg, ushort value)
    {
        Pio.Write(0xCF8, BitConverter.GetBytes(PciConfigAddress.Encode(a, reg & ~3)));
        Pio.Write(0xCFC + (ulong)(reg & 3), BitConverter.GetBytes(value));
    }

    public byte ConfigRead8(PciAddress a, int reg)
    {
        Span<byte> b = stackalloc byte[1];
        Pio.Write(0xCF8, BitConverter.GetBytes(PciConfigAddress.Encode(a, reg & ~3)));
        Pio.Read(0xCFC + (ulong)(reg & 3), b);
        return b[0];
    }

    public void Dispose() => Memory.Dispose();
}
