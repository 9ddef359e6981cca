using Ringvisor.Devices.Platform;
using Ringvisor.Devices.Tests.Support;

namespace Ringvisor.Devices.Tests.Platform;

public class Pic8259PairTests
{
    private readonly Pic8259Pair _pic = new();
    private readonly RecordingLine _int = new();

    public Pic8259PairTests() => _pic.ConnectOutput(_int);

    /// <summary>The initialisation Linux and the BIOS do: ICW1 edge/cascade/ICW4, vector bases, cascade on IR2, 8086 mode.</summary>
    private void Init(byte masterBase = 0x20, byte slaveBase = 0x28, byte icw4 = 0x01)
    {
        _pic.MasterPorts.Out8(0, 0x11);
        _pic.MasterPorts.Out8(1, masterBase);
        _pic.MasterPorts.Out8(1, 0x04);
        _pic.MasterPorts.Out8(1, icw4);
        _pic.SlavePorts.Out8(0, 0x11);
        _pic.SlavePorts.Out8(1, slaveBase);
        _pic.SlavePorts.Out8(1, 0x02);
        _pic.SlavePorts.Out8(1, icw4);
    }

    private void Pulse(int irq)
    {
        _pic.SetIrq(irq, true);
        _pic.SetIrq(irq, false);
    }

    private byte MasterIsr()
    {
        _pic.MasterPorts.Out8(0, 0x0B);
        return _pic.MasterPorts.In8(0);
    }

    private byte SlaveIsr()
    {
        _pic.SlavePorts.Out8(0, 0x0B);
        return _pic.SlavePorts.In8(0);
    }

    [Fact]
    public void Init_Sequence_SetsVectorBaseAndClearsMask()
    {
        _pic.MasterPorts.Out8(1, 0xFF);
        Init(0x30, 0x38);
        Assert.Equal(0x00, _pic.MasterPorts.In8(1)); // ICW1 clears IMR
        Pulse(1);
        Assert.True(_pic.HasInterrupt);
        Assert.Equal(0x31, _pic.Acknowledge());
    }

    [Fact]
    public void Priority_TwoRequests_LowerIrqFirst()
    {
        Init();
        Pulse(5);
        Pulse(3);
        Assert.Equal(0x23, _pic.Acknowledge());
        Assert.False(_pic.HasInterrupt); // IRQ 5 waits behind IRQ 3 in service
        _pic.MasterPorts.Out8(0, 0x20); // non-specific EOI
        Assert.True(_pic.HasInterrupt);
        Assert.Equal(0x25, _pic.Acknowledge());
    }

    [Fact]
    public void Priority_HigherArrivesDuringService_Nests()
    {
        Init();
        Pulse(4);
        Assert.Equal(0x24, _pic.Acknowledge());
        Pulse(1);
        Assert.True(_pic.HasInterrupt);
        Assert.Equal(0x21, _pic.Acknowledge());
        Assert.Equal(0x12, MasterIsr());
    }

    [Fact]
    public void Eoi_Specific_ClearsOnlyThatLevel()
    {
        Init();
        Pulse(4);
        _pic.Acknowledge();
        Pulse(1);
        _pic.Acknowledge();
        _pic.MasterPorts.Out8(0, 0x60 | 4); // specific EOI for IR4
        Assert.Equal(0x02, MasterIsr());
    }

    [Fact]
    public void Imr_MaskedIrq_NotDelivered()
    {
        Init();
        _pic.MasterPorts.Out8(1, 0x08);
        Pulse(3);
        Assert.False(_pic.HasInterrupt);
        Assert.False(_int.Level);
        _pic.MasterPorts.Out8(1, 0x00);
        Assert.True(_pic.HasInterrupt);
        Assert.True(_int.Level);
    }

    [Fact]
    public void Cascade_SlaveIrq_DeliversSlaveVectorAndSetsBothIsr()
    {
        Init();
        Pulse(9);
        Assert.True(_pic.HasInterrupt);
        Assert.Equal(0x29, _pic.Acknowledge());
        Assert.Equal(0x04, MasterIsr());
        Assert.Equal(0x02, SlaveIsr());
    }

    [Fact]
    public void Cascade_MaskedOnMaster_BlocksSlave()
    {
        Init();
        _pic.MasterPorts.Out8(1, 0x04);
        Pulse(12);
        Assert.False(_pic.HasInterrupt);
    }

    [Fact]
    public void Spurious_LevelDroppedBeforeAck_ReturnsIrq7VectorWithoutIsr()
    {
        Init();
        _pic.ElcrPorts.Out8(0, 0x20); // IRQ 5 level-triggered
        _pic.SetIrq(5, true);
        Assert.True(_pic.HasInterrupt);
        _pic.SetIrq(5, false);
        Assert.Equal(0x27, _pic.Acknowledge());
        Assert.Equal(0x00, MasterIsr());
    }

    [Fact]
    public void Spurious_SlaveLevelDroppedBeforeAck_ReturnsIrq7VectorWithoutIsr()
    {
        Init();
        _pic.ElcrPorts.Out8(1, 0x02); // IRQ 9 level-triggered
        _pic.SetIrq(9, true);
        Assert.True(_pic.HasInterrupt);
        _pic.SetIrq(9, false);
        Assert.Equal(0x27, _pic.Acknowledge());
        Assert.Equal(0x00, MasterIsr());
        Assert.Equal(0x00, SlaveIsr());
    }

    [Fact]
    public void Elcr_FixedEdgeBits_CannotBeSetLevel()
    {
        _pic.ElcrPorts.Out8(0, 0xFF);
        _pic.ElcrPorts.Out8(1, 0xFF);
        Assert.Equal(0xF8, _pic.ElcrPorts.In8(0));
        Assert.Equal(0xDE, _pic.ElcrPorts.In8(1));
    }

    [Fact]
    public void LevelTriggered_StillAssertedAfterEoi_Redelivers()
    {
        Init();
        _pic.ElcrPorts.Out8(1, 0x08); // IRQ 11 level
        _pic.SetIrq(11, true);
        Assert.Equal(0x2B, _pic.Acknowledge());
        _pic.SlavePorts.Out8(0, 0x20);
        _pic.MasterPorts.Out8(0, 0x20);
        Assert.True(_pic.HasInterrupt);
        _pic.SetIrq(11, false);
        Assert.False(_pic.HasInterrupt);
    }

    [Fact]
    public void EdgeTriggered_HeldHigh_OnlyOneRequest()
    {
        Init();
        _pic.SetIrq(4, true);
        _pic.Acknowledge();
        _pic.MasterPorts.Out8(0, 0x20);
        Assert.False(_pic.HasInterrupt);
    }

    [Fact]
    public void AutoEoi_Acknowledge_LeavesIsrClear()
    {
        Init(icw4: 0x03);
        Pulse(6);
        Assert.Equal(0x26, _pic.Acknowledge());
        Assert.Equal(0x00, MasterIsr());
    }

    [Fact]
    public void Poll_Command_ReturnsAndAcknowledgesHighestRequest()
    {
        Init();
        Pulse(6);
        _pic.MasterPorts.Out8(0, 0x0C); // OCW3 poll
        Assert.Equal(0x86, _pic.MasterPorts.In8(0));
        Assert.Equal(0x40, MasterIsr());
        _pic.MasterPorts.Out8(0, 0x0C);
        Assert.Equal(0x00, _pic.MasterPorts.In8(0));
    }

    [Fact]
    public void Irr_ReadRegister_ShowsRequests()
    {
        Init();
        _pic.MasterPorts.Out8(1, 0xFF);
        Pulse(3);
        _pic.MasterPorts.Out8(0, 0x0A);
        Assert.Equal(0x08, _pic.MasterPorts.In8(0));
    }

    [Fact]
    public void SpecialMask_MaskedInService_AllowsLowerPriority()
    {
        Init();
        Pulse(2 + 1);
        Assert.Equal(0x23, _pic.Acknowledge());
        _pic.MasterPorts.Out8(1, 0x08); // mask the in-service IR3
        _pic.MasterPorts.Out8(0, 0x68); // OCW3: set special mask mode
        Pulse(5);
        Assert.True(_pic.HasInterrupt);
        Assert.Equal(0x25, _pic.Acknowledge());
    }

    [Fact]
    public void RotateOnEoi_ServicedIrqBecomesLowest()
    {
        Init();
        Pulse(1);
        _pic.Acknowledge();
        _pic.MasterPorts.Out8(0, 0xA0); // rotate on non-specific EOI
        Pulse(1);
        Pulse(4);
        Assert.Equal(0x24, _pic.Acknowledge()); // IR1 is now the lowest priority
    }

    [Fact]
    public void SaveRestore_RoundTrip_KeepsPendingRequest()
    {
        Init();
        Pulse(7);
        var other = new Pic8259Pair();
        other.Restore(_pic.Save());
        Assert.True(other.HasInterrupt);
        Assert.Equal(0x27, other.Acknowledge());
        Assert.Equal(0x80, other.Save().Master.Isr);
    }
}
