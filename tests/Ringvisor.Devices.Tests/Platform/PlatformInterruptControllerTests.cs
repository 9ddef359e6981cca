using Ringvisor.Devices.Platform;
using Ringvisor.Devices.Tests.Support;

namespace Ringvisor.Devices.Tests.Platform;

public class PlatformInterruptControllerTests
{
    private readonly ApicTestRig _rig = new();

    public PlatformInterruptControllerTests() => _rig.EnableAll();

    [Fact]
    public void Gsi0_Pit_ArrivesOnIoApicPin2()
    {
        _rig.WriteRedirection(2, 0x30);
        _rig.WriteRedirection(0, 0x3F);
        _rig.Routing.SetGsi(0, true);
        Assert.Equal(0x30, _rig.Lapics[0].AcknowledgeInterrupt());
        Assert.False(_rig.Lapics[0].HasInterrupt);
    }

    [Fact]
    public void IsaIrq_BothControllers_SeeIt()
    {
        _rig.WriteRedirection(4, 0x34);
        _rig.Routing.SetGsi(4, true);
        Assert.True(_rig.Pic.Save().Master.Irr == 0x10);
        Assert.Equal(0x34, _rig.Lapics[0].AcknowledgeInterrupt());
    }

    [Fact]
    public void PciGsi_OnlyIoApic()
    {
        _rig.WriteRedirection(19, (1UL << 15) | (1UL << 56) | 0x49);
        _rig.Routing.SetGsi(19, true);
        Assert.Equal(0x49, _rig.Lapics[1].AcknowledgeInterrupt());
    }

    [Fact]
    public void Gsi_OutOfRange_Ignored()
    {
        _rig.Routing.SetGsi(-1, true);
        _rig.Routing.SetGsi(24, true);
        Assert.False(_rig.Lapics[0].HasInterrupt);
    }

    [Fact]
    public void Msi_PhysicalFixed_ReachesDestinationWithVector()
    {
        _rig.Routing.SignalMsi(0xFEE0_2000, 0x0000_0051);
        Assert.Equal(0x51, _rig.Lapics[2].AcknowledgeInterrupt());
        Assert.False(_rig.Lapics[0].HasInterrupt);
    }

    [Fact]
    public void Msi_OutsideInterruptWindow_Dropped()
    {
        _rig.Routing.SignalMsi(0xFED0_0000, 0x51);
        Assert.All(_rig.Lapics, l => Assert.False(l.HasInterrupt));
        Assert.Equal(1, _rig.Bus.UndeliveredMessages);
    }

    [Fact]
    public void Msi_LevelTriggerData_SetsTmr()
    {
        _rig.Routing.SignalMsi(0xFEE0_0000, 0x0000_C052);
        Assert.True(ApicTestRig.Bit(_rig.Lapics[0], ApicTestRig.Tmr, 0x52));
    }

    [Theory]
    [InlineData(0xFEE0_1000UL, 0x0000_0041u, 0x41, ApicDeliveryMode.Fixed, 0x01, false, false)]
    [InlineData(0xFEE0_F00CUL, 0x0000_0143u, 0x43, ApicDeliveryMode.LowestPriority, 0x0F, true, false)]
    [InlineData(0xFEE0_0008UL, 0x0000_0044u, 0x44, ApicDeliveryMode.LowestPriority, 0x00, false, false)] // RH = 1
    [InlineData(0xFEEF_F000UL, 0x0000_0400u, 0x00, ApicDeliveryMode.Nmi, 0xFF, false, false)]
    [InlineData(0xFEE0_0000UL, 0x0000_C045u, 0x45, ApicDeliveryMode.Fixed, 0x00, false, true)]
    public void TryDecodeMsi_Fields_Decoded(ulong address, uint data, int vector, ApicDeliveryMode mode, int dest, bool logical, bool level)
    {
        Assert.True(ApicBus.TryDecodeMsi(address, data, out var m));
        Assert.Equal(vector, m.Vector);
        Assert.Equal(mode, m.Mode);
        Assert.Equal(dest, m.Destination);
        Assert.Equal(logical, m.Logical);
        Assert.Equal(level, m.LevelTriggered);
    }
}
