using Ringvisor.Core.Memory;
using Ringvisor.Devices.Pci;
using Ringvisor.Devices.Tests.Virtio.Driver;

namespace Ringvisor.Devices.Tests.Pci;

public sealed class PciBusTests : IDisposable
{
    private static readonly PciAddress s_hostBridge = new(0, 0, 0);
    private readonly TestMachine _m = new();

    public void Dispose() => _m.Dispose();

    [Fact]
    public void ConfigMechanism1_HostBridge_ReadsIntelIdsAndBridgeClass()
    {
        uint ids = _m.ConfigRead32(s_hostBridge, 0);
        Assert.Equal(PciHostBridge.IntelVendorId, (ushort)ids);
        Assert.Equal(PciHostBridge.I440FxDeviceId, (ushort)(ids >> 16));
        Assert.Equal(PciHostBridge.HostBridgeClass, _m.ConfigRead32(s_hostBridge, 8) >> 8);
        Assert.Equal(0, _m.ConfigRead8(s_hostBridge, PciConfigSpace.HeaderTypeOffset));
    }

    [Fact]
    public void ConfigMechanism1_AbsentDevice_ReadsAllOnes()
    {
        Assert.Equal(0xFFFF_FFFFu, _m.ConfigRead32(new PciAddress(0, 7, 0), 0));
        Assert.Equal(0xFFFF_FFFFu, _m.ConfigRead32(new PciAddress(0, 0, 3), 0));
        Assert.Equal(0xFFFF_FFFFu, _m.ConfigRead32(new PciAddress(1, 0, 0), 0));
    }

    [Fact]
    public void ConfigMechanism1_EnableBitClear_DataPortReadsAllOnes()
    {
        _m.Pio.Write(0xCF8, BitConverter.GetBytes(0x0000_0000u));
        Span<byte> b = stackalloc byte[4];
        _m.Pio.Read(0xCFC, b);
        Assert.Equal(0xFFFF_FFFFu, BitConverter.ToUInt32(b));
    }

    [Fact]
    public void ConfigMechanism1_AddressRegister_ReadsBackWithLowBitsClear()
    {
        _m.Pio.Write(0xCF8, BitConverter.GetBytes(0x8000_0813u));
        Span<byte> b = stackalloc byte[4];
        _m.Pio.Read(0xCF8, b);
        Assert.Equal(0x8000_0810u, BitConverter.ToUInt32(b));
    }

    [Fact]
    public void ConfigMechanism1_ByteAndWordAccess_SelectBytesOfTheRegister()
    {
        Assert.Equal(0x86, _m.ConfigRead8(s_hostBridge, 0));
        Assert.Equal(0x80, _m.ConfigRead8(s_hostBridge, 1));
        Assert.Equal(0x1237, _m.ConfigRead16(s_hostBridge, 2));
    }

    [Fact]
    public void Ecam_WriteThenReadThroughMechanism1_SeesSameRegister()
    {
        var fn = new TestPciFunction();
        var a = _m.Pci.AddDevice(fn, 3);
        ulong reg = MemoryLayout.PciEcamBase + ((ulong)a.Device << 15) + PciConfigSpace.InterruptLineOffset;
        _m.Mmio.Write(reg, [0x2A]);
        Assert.Equal(0x2A, _m.ConfigRead8(a, PciConfigSpace.InterruptLineOffset));
        Span<byte> id = stackalloc byte[4];
        _m.Mmio.Read(MemoryLayout.PciEcamBase + ((ulong)a.Device << 15), id);
        Assert.Equal(0x5678_1234u, BitConverter.ToUInt32(id));
    }

    [Fact]
    public void Ecam_ExtendedRegisterOfAbsentFunction_ReadsAllOnes()
    {
        Span<byte> b = stackalloc byte[4];
        _m.Mmio.Read(MemoryLayout.PciEcamBase + (9UL << 15) + 0x100, b);
        Assert.Equal(0xFFFF_FFFFu, BitConverter.ToUInt32(b));
    }

    [Fact]
    public void BarSizing_WriteAllOnes_ReadsSizeMaskAndTypeBits()
    {
        var a = _m.Pci.AddDevice(new TestPciFunction());
        _m.ConfigWrite16(a, PciConfigSpace.CommandOffset, 0);
        _m.ConfigWrite32(a, 0x10, 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_F000u, _m.ConfigRead32(a, 0x10)); // 4 KiB, 32-bit, non-prefetchable
        _m.ConfigWrite32(a, 0x18, 0xFFFF_FFFF);
        _m.ConfigWrite32(a, 0x1C, 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_C004u, _m.ConfigRead32(a, 0x18)); // 16 KiB, type 10b = 64-bit
        Assert.Equal(0xFFFF_FFFFu, _m.ConfigRead32(a, 0x1C));
        _m.ConfigWrite32(a, 0x20, 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_FFE1u, _m.ConfigRead32(a, 0x20)); // 32 ports, I/O indicator
        _m.ConfigWrite32(a, 0x14, 0xFFFF_FFFF);
        Assert.Equal(0u, _m.ConfigRead32(a, 0x14)); // unimplemented BAR
    }

    [Fact]
    public void AddDevice_AssignsBarsInWindowsAndEnablesDecode()
    {
        var fn = new TestPciFunction();
        var a = _m.Pci.AddDevice(fn);
        ulong bar0 = _m.ConfigRead32(a, 0x10) & ~0xFu;
        uint io = _m.ConfigRead32(a, 0x20) & ~3u;
        Assert.InRange(bar0, MemoryLayout.PciMmioBase, MemoryLayout.PciMmioBase + MemoryLayout.PciMmioSize - 1);
        Assert.Equal(0u, bar0 % 0x1000);
        Assert.InRange(io, 0xC000u, 0xFFFFu);
        ushort cmd = _m.ConfigRead16(a, PciConfigSpace.CommandOffset);
        Assert.Equal(PciConfigSpace.CommandMemoryEnable | PciConfigSpace.CommandIoEnable, cmd & 3);

        _m.Mmio.Write(bar0 + 8, [0x77]);
        Assert.Equal(0x77, fn.Mem32.Bytes[8]);
        _m.Pio.Write(io + 4, [0x55]);
        Assert.Equal(0x55, fn.Io.Bytes[4]);
    }

    [Fact]
    public void BarWrite_GuestMovesBar_BusDecodesAtNewAddressOnly()
    {
        var fn = new TestPciFunction();
        var a = _m.Pci.AddDevice(fn);
        ulong old = fn.GetBarAddress(2)!.Value;
        const ulong target = 0xD000_0000;
        _m.ConfigWrite32(a, 0x18, (uint)target);
        _m.ConfigWrite32(a, 0x1C, 0);
        Assert.Equal(target, _m.Pci.GetMappedAddress(fn, 2));
        _m.Mmio.Write(target + 0x10, [0x99]);
        Assert.Equal(0x99, fn.Mem64.Bytes[0x10]);
        long unclaimed = _m.Mmio.UnclaimedWrites;
        _m.Mmio.Write(old + 0x10, [0x11]);
        Assert.Equal(unclaimed + 1, _m.Mmio.UnclaimedWrites);
        Assert.Equal(0x99, fn.Mem64.Bytes[0x10]);
    }

    [Fact]
    public void BarWrite_64BitBarAbove4G_MapsHigh()
    {
        var fn = new TestPciFunction();
        var a = _m.Pci.AddDevice(fn);
        _m.ConfigWrite32(a, 0x18, 0x0000_0000);
        _m.ConfigWrite32(a, 0x1C, 0x10);
        Assert.Equal(0x10_0000_0000UL, _m.Pci.GetMappedAddress(fn, 2));
    }

    [Fact]
    public void CommandRegister_MemoryDecodeToggled_UnmapsAndRemapsMemoryBars()
    {
        var fn = new TestPciFunction();
        var a = _m.Pci.AddDevice(fn);
        ulong bar0 = fn.GetBarAddress(0)!.Value;
        _m.ConfigWrite16(a, PciConfigSpace.CommandOffset, PciConfigSpace.CommandIoEnable);
        Assert.Null(_m.Pci.GetMappedAddress(fn, 0));
        Assert.NotNull(_m.Pci.GetMappedAddress(fn, 4));
        Assert.False(_m.Mmio.Write(bar0, [1]));
        _m.ConfigWrite16(a, PciConfigSpace.CommandOffset, PciConfigSpace.CommandIoEnable | PciConfigSpace.CommandMemoryEnable);
        Assert.Equal(bar0, _m.Pci.GetMappedAddress(fn, 0));
        Assert.True(_m.Mmio.Write(bar0, [1]));
    }

    [Fact]
    public void BarWrite_OverlappingAnotherDevice_StaysUnmappedAndIsCounted()
    {
        var f1 = new TestPciFunction();
        var f2 = new TestPciFunction();
        _m.Pci.AddDevice(f1);
        var a2 = _m.Pci.AddDevice(f2);
        ulong taken = f1.GetBarAddress(0)!.Value;
        _m.ConfigWrite32(a2, 0x10, (uint)taken);
        Assert.Null(_m.Pci.GetMappedAddress(f2, 0));
        Assert.Equal(1, _m.Pci.BarConflicts);
        _m.Mmio.Write(taken, [0x42]);
        Assert.Equal(0x42, f1.Mem32.Bytes[0]);
    }

    [Fact]
    public void BarMappingChanged_GuestMovesBar_EventReportsNewAddress()
    {
        var fn = new TestPciFunction();
        var a = _m.Pci.AddDevice(fn);
        var seen = new List<(int Bar, ulong? Address)>();
        _m.Pci.BarMappingChanged += (f, bar, addr) => seen.Add((bar, addr));
        _m.ConfigWrite32(a, 0x10, 0xD100_0000);
        Assert.Contains((0, (ulong?)0xD100_0000), seen);
    }

    [Fact]
    public void CapabilityList_WithMsix_IsLinkedFromCapabilitiesPointer()
    {
        var a = _m.Pci.AddDevice(new TestPciFunction());
        Assert.NotEqual(0, _m.ConfigRead16(a, PciConfigSpace.StatusOffset) & PciConfigSpace.StatusCapabilitiesList);
        int cap = _m.ConfigRead8(a, PciConfigSpace.CapabilitiesPointerOffset);
        Assert.Equal(MsixCapability.CapabilityId, _m.ConfigRead8(a, cap));
        Assert.Equal(3, _m.ConfigRead16(a, cap + 2) & 0x7FF); // table size N-1
        Assert.Equal(5u, _m.ConfigRead32(a, cap + 4) & 7);    // BIR
    }

    [Fact]
    public void Intx_Asserted_DrivesSwizzledGsiAndRespectsInterruptDisable()
    {
        var fn = new TestPciFunction();
        var a = _m.Pci.AddDevice(fn, 5);
        int gsi = PciBus.GsiFor(5, 1);
        Assert.Equal(16 + (5 % 4), gsi);
        Assert.Equal(gsi, _m.ConfigRead8(a, PciConfigSpace.InterruptLineOffset));
        Assert.Equal(1, _m.ConfigRead8(a, PciConfigSpace.InterruptPinOffset));
        fn.SetIntx(true);
        Assert.True(_m.Interrupts.Level(gsi));
        Assert.NotEqual(0, _m.ConfigRead16(a, PciConfigSpace.StatusOffset) & PciConfigSpace.StatusInterrupt);
        ushort cmd = _m.ConfigRead16(a, PciConfigSpace.CommandOffset);
        _m.ConfigWrite16(a, PciConfigSpace.CommandOffset, (ushort)(cmd | PciConfigSpace.CommandInterruptDisable));
        Assert.False(_m.Interrupts.Level(gsi));
        Assert.NotEqual(0, _m.ConfigRead16(a, PciConfigSpace.StatusOffset) & PciConfigSpace.StatusInterrupt);
        _m.ConfigWrite16(a, PciConfigSpace.CommandOffset, cmd);
        Assert.True(_m.Interrupts.Level(gsi));
        fn.SetIntx(false);
        Assert.False(_m.Interrupts.Level(gsi));
    }

    [Fact]
    public void Intx_TwoDevicesSharingAGsi_LineStaysAssertedWhileEitherAsserts()
    {
        var f1 = new TestPciFunction();
        var f2 = new TestPciFunction();
        _m.Pci.AddDevice(f1, 1);
        _m.Pci.AddDevice(f2, 5);
        int gsi = PciBus.GsiFor(1, 1);
        Assert.Equal(gsi, PciBus.GsiFor(5, 1));
        f1.SetIntx(true);
        f2.SetIntx(true);
        f1.SetIntx(false);
        Assert.True(_m.Interrupts.Level(gsi));
        f2.SetIntx(false);
        Assert.False(_m.Interrupts.Level(gsi));
    }

    [Fact]
    public void Intx_WithIsaRouting_DrivesIoApicGsiAndIsaIrqAndLineRegisterHoldsIsaIrq()
    {
        var pio = new Ringvisor.Core.Bus.IoBus("pio", 0x1_0000);
        var mmio = new Ringvisor.Core.Bus.IoBus("mmio", ulong.MaxValue);
        var pci = new PciBus(pio, mmio, _m.Interrupts, isaIrqs: PciBus.PcIsaIrqs);
        var f1 = new TestPciFunction();
        var f2 = new TestPciFunction();
        pci.AddDevice(f1, 4); // link 0: GSI 16, IRQ 10
        pci.AddDevice(f2, 1); // link 1: GSI 17, IRQ 10 as well
        Assert.Equal(10, f1.Config.InterruptLine);
        Assert.Equal((1 << 10) | (1 << 11), pci.IsaIrqMask);
        Assert.Equal(10, pci.IrqRoutes.Single(r => r.Device == 1).IsaIrq);

        f1.SetIntx(true);
        f2.SetIntx(true);
        Assert.True(_m.Interrupts.Level(16));
        Assert.True(_m.Interrupts.Level(17));
        Assert.True(_m.Interrupts.Level(10));
        f1.SetIntx(false);
        Assert.False(_m.Interrupts.Level(16));
        Assert.True(_m.Interrupts.Level(10)); // wired-OR across the two links that share IRQ 10
        f2.SetIntx(false);
        Assert.False(_m.Interrupts.Level(10));
        Assert.False(_m.Interrupts.Level(11));
    }

    [Fact]
    public void Constructor_IsaIrqTableNotFourIsaIrqs_Throws()
    {
        var pio = new Ringvisor.Core.Bus.IoBus("pio", 0x1_0000);
        var mmio = new Ringvisor.Core.Bus.IoBus("mmio", ulong.MaxValue);
        Assert.Throws<ArgumentException>(() => new PciBus(pio, mmio, _m.Interrupts, isaIrqs: [10, 11]));
        Assert.Throws<ArgumentException>(() => new PciBus(pio, mmio, _m.Interrupts, isaIrqs: [10, 11, 16, 5]));
    }

    [Fact]
    public void IrqRoutes_ListsDevicesUsingIntxWithMpSourceIrq()
    {
        _m.Pci.AddDevice(new TestPciFunction(), 6);
        var route = Assert.Single(_m.Pci.IrqRoutes);
        Assert.Equal(new PciIrqRoute(6, 1, 18), route);
        Assert.Equal(6 << 2, route.MpSourceIrq);
    }

    [Fact]
    public void AddDevice_SlotTaken_ThrowsNamingBothDevices()
    {
        var e = Assert.Throws<InvalidOperationException>(() => _m.Pci.AddDevice(new TestPciFunction(), 0));
        Assert.Contains("host-bridge", e.Message);
    }
}
