using Ringvisor.Devices.Pci;
using Ringvisor.Devices.Tests.Virtio.Driver;

namespace Ringvisor.Devices.Tests.Pci;

public sealed class MsixCapabilityTests : IDisposable
{
    private readonly TestMachine _m = new();
    private readonly TestPciFunction _fn = new();
    private readonly PciAddress _a;
    private readonly int _cap;
    private readonly ulong _table;

    public MsixCapabilityTests()
    {
        _a = _m.Pci.AddDevice(_fn);
        _cap = _m.ConfigRead8(_a, PciConfigSpace.CapabilitiesPointerOffset);
        _table = _fn.GetBarAddress(5)!.Value;
        for (int v = 0; v < 4; v++)
        {
            WriteTable(v, 0, 0xFEE0_0000);
            WriteTable(v, 8, (uint)(0x30 + v));
        }
    }

    public void Dispose() => _m.Dispose();

    [Fact]
    public void Signal_MsixDisabled_DeliversNothing()
    {
        Assert.False(_fn.Msix!.Signal(0));
        Assert.Empty(_m.Interrupts.Msis);
    }

    [Fact]
    public void Signal_VectorMaskedAtReset_SetsPendingBitThenDeliversOnUnmask()
    {
        Enable(functionMask: false);
        Assert.True(_fn.Msix!.Signal(2));
        Assert.Empty(_m.Interrupts.Msis);
        Assert.True(_fn.Msix.IsPending(2));
        Assert.Equal(1u << 2, ReadPba());

        WriteTable(2, 12, 0); // unmask vector 2
        Assert.False(_fn.Msix.IsPending(2));
        Assert.Equal(0u, ReadPba());
        var msi = Assert.Single(_m.Interrupts.Msis);
        Assert.Equal((0xFEE0_0000UL, 0x32u), msi);
    }

    [Fact]
    public void Signal_FunctionMasked_PendsUntilFunctionMaskCleared()
    {
        WriteTable(1, 12, 0);
        Enable(functionMask: true);
        _fn.Msix!.Signal(1);
        Assert.Empty(_m.Interrupts.Msis);
        Assert.True(_fn.Msix.IsPending(1));
        Enable(functionMask: false);
        Assert.Equal(1, _m.Interrupts.MsiCount(0x31));
        Assert.False(_fn.Msix.IsPending(1));
    }

    [Fact]
    public void Signal_Unmasked_DeliversProgrammedMessage()
    {
        WriteTable(3, 4, 0x1); // address high
        WriteTable(3, 12, 0);
        Enable(functionMask: false);
        _fn.Msix!.Signal(3);
        Assert.Equal((0x1_FEE0_0000UL, 0x33u), Assert.Single(_m.Interrupts.Msis));
    }

    [Fact]
    public void VectorControl_ReservedBits_ReadAsZero()
    {
        WriteTable(0, 12, 0xFFFF_FFFF);
        Assert.Equal(1u, ReadTable(0, 12));
    }

    [Fact]
    public void Signal_OutOfRangeVector_ReturnsFalse()
    {
        Enable(functionMask: false);
        Assert.False(_fn.Msix!.Signal(4));
        Assert.False(_fn.Msix.Signal(-1));
    }

    private void Enable(bool functionMask)
    {
        ushort ctl = (ushort)(MsixCapability.ControlEnable | (functionMask ? MsixCapability.ControlFunctionMask : 0));
        _m.ConfigWrite16(_a, _cap + 2, ctl);
    }

    private void WriteTable(int vector, int field, uint value) =>
        _m.Mmio.Write(_table + (ulong)(vector * 16) + (ulong)field, BitConverter.GetBytes(value));

    private uint ReadTable(int vector, int field)
    {
        var b = new byte[4];
        _m.Mmio.Read(_table + (ulong)(vector * 16) + (ulong)field, b);
        return BitConverter.ToUInt32(b);
    }

    private uint ReadPba()
    {
        var b = new byte[4];
        _m.Mmio.Read(_table + 0x800, b);
        return BitConverter.ToUInt32(b);
    }
}
