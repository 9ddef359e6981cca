using Ringvisor.Devices.Platform;
using Ringvisor.Devices.Tests.Support;

namespace Ringvisor.Devices.Tests.Platform;

public class IoApicTests
{
    private const ulong Masked = 1UL << 16, Level = 1UL << 15, RemoteIrr = 1UL << 14, Logical = 1UL << 11;

    private readonly ApicTestRig _rig = new();

    public IoApicTests() => _rig.EnableAll();

    private static ulong Dest(byte id) => (ulong)id << 56;

    [Fact]
    public void Version_Read_Reports24EntriesVersion11()
    {
        _rig.IoApic.Write32(0x00, 0x01);
        Assert.Equal(0x0017_0011u, _rig.IoApic.Read32(0x10));
    }

    [Fact]
    public void Redirection_AfterReset_AllMasked()
    {
        for (int pin = 0; pin < IoApic.PinCount; pin++)
        {
            Assert.Equal(Masked, _rig.ReadRedirection(pin) & Masked);
        }
    }

    [Fact]
    public void Redirection_Write_ReadsBackWithoutReadOnlyBits()
    {
        ulong entry = Dest(2) | Logical | 0x31 | (1UL << 12) | RemoteIrr;
        _rig.WriteRedirection(5, entry);
        Assert.Equal(Dest(2) | Logical | 0x31, _rig.ReadRedirection(5));
    }

    [Fact]
    public void EdgePin_RisingEdge_DeliversToDestination()
    {
        _rig.WriteRedirection(4, Dest(1) | 0x31);
        _rig.IoApic.SetPin(4, true);
        Assert.True(ApicTestRig.Bit(_rig.Lapics[1], ApicTestRig.Irr, 0x31));
        Assert.False(ApicTestRig.Bit(_rig.Lapics[0], ApicTestRig.Irr, 0x31));
        Assert.Equal(0x31, _rig.Lapics[1].AcknowledgeInterrupt());
    }

    [Fact]
    public void EdgePin_Masked_EdgeLost()
    {
        _rig.WriteRedirection(4, Masked | Dest(0) | 0x31);
        _rig.IoApic.SetPin(4, true);
        _rig.WriteRedirection(4, Dest(0) | 0x31);
        Assert.False(_rig.Lapics[0].HasInterrupt);
    }

    [Fact]
    public void LevelPin_Asserted_SetsRemoteIrrAndTmr()
    {
        _rig.WriteRedirection(10, Level | Dest(0) | 0x40);
        _rig.IoApic.SetPin(10, true);
        Assert.Equal(RemoteIrr, _rig.ReadRedirection(10) & RemoteIrr);
        Assert.True(ApicTestRig.Bit(_rig.Lapics[0], ApicTestRig.Tmr, 0x40));
    }

    [Fact]
    public void LevelPin_EoiWhileStillAsserted_Redelivers()
    {
        var lapic = _rig.Lapics[0];
        _rig.WriteRedirection(10, Level | Dest(0) | 0x40);
        _rig.IoApic.SetPin(10, true);
        Assert.Equal(0x40, lapic.AcknowledgeInterrupt());
        Assert.False(lapic.HasInterrupt);

        lapic.Write32(ApicTestRig.Eoi, 0);

        Assert.True(lapic.HasInterrupt);
        Assert.Equal(RemoteIrr, _rig.ReadRedirection(10) & RemoteIrr);
    }

    [Fact]
    public void LevelPin_EoiAfterDeassert_ClearsRemoteIrr()
    {
        var lapic = _rig.Lapics[0];
        _rig.WriteRedirection(10, Level | Dest(0) | 0x40);
        _rig.IoApic.SetPin(10, true);
        lapic.AcknowledgeInterrupt();
        _rig.IoApic.SetPin(10, false);
        lapic.Write32(ApicTestRig.Eoi, 0);
        Assert.Equal(0UL, _rig.ReadRedirection(10) & RemoteIrr);
        Assert.False(lapic.HasInterrupt);
    }

    [Fact]
    public void LevelPin_UnmaskedWhileAsserted_Delivers()
    {
        _rig.WriteRedirection(11, Masked | Level | Dest(0) | 0x41);
        _rig.IoApic.SetPin(11, true);
        Assert.False(_rig.Lapics[0].HasInterrupt);
        _rig.WriteRedirection(11, Level | Dest(0) | 0x41);
        Assert.True(_rig.Lapics[0].HasInterrupt);
    }

    [Fact]
    public void LogicalDestination_FlatModel_DeliversToEveryMatchingLapic()
    {
        _rig.Lapics[1].Write32(ApicTestRig.Ldr, 0x0200_0000);
        _rig.Lapics[2].Write32(ApicTestRig.Ldr, 0x0400_0000);
        _rig.WriteRedirection(6, Logical | Dest(0x06) | 0x33);
        _rig.IoApic.SetPin(6, true);
        Assert.False(_rig.Lapics[0].HasInterrupt);
        Assert.True(_rig.Lapics[1].HasInterrupt);
        Assert.True(_rig.Lapics[2].HasInterrupt);
    }

    [Fact]
    public void SaveRestore_RoundTrip_KeepsEntries()
    {
        _rig.WriteRedirection(3, Dest(1) | 0x44);
        var other = new ApicTestRig();
        other.IoApic.Restore(_rig.IoApic.Save());
        Assert.Equal(Dest(1) | 0x44, other.ReadRedirection(3));
    }

    [Fact]
    public void Id_GivenAtConstruction_ReadsBackInBits27To24()
    {
        var ioapic = new IoApic(new ApicBus(), id: 5);
        ioapic.Write32(0x00, 0x00);
        Assert.Equal(0x0500_0000u, ioapic.Read32(0x10));
    }
}
