using Ringvisor.Devices.Platform;
using Ringvisor.Devices.Tests.Support;

namespace Ringvisor.Devices.Tests.Platform;

public class Pit8254Tests
{
    private const ulong Counter0 = 0, Counter2 = 2, Control = 3;
    private const long InputHz = 1_193_182;

    private readonly FakeClock _clock = new();
    private readonly RecordingLine _irq0 = new();
    private readonly Pit8254 _pit;

    public Pit8254Tests() => _pit = new Pit8254(_clock, _irq0, _clock);

    /// <summary>The first nanosecond at which <paramref name="ticks"/> input clocks have elapsed.</summary>
    private static long Ns(long ticks) => ((ticks * 1_000_000_000) + InputHz - 1) / InputHz;

    private void Load(ulong counter, byte control, ushort count)
    {
        _pit.Out8(Control, control);
        _pit.Out8(counter, (byte)count);
        _pit.Out8(counter, (byte)(count >> 8));
    }

    private int LatchAndRead(ulong counter)
    {
        _pit.Out8(Control, (byte)(counter << 6)); // counter latch command
        int lo = _pit.In8(counter);
        int hi = _pit.In8(counter);
        return lo | (hi << 8);
    }

    private byte Status(int counter)
    {
        _pit.Out8(Control, (byte)(0xE0 | (2 << counter))); // read-back: status only
        return _pit.In8((ulong)counter);
    }

    [Fact]
    public void Mode2_TimePasses_CountsDownAndReloads()
    {
        Load(Counter0, 0x34, 1000);
        _clock.AdvanceTo(Ns(100));
        Assert.Equal(900, LatchAndRead(Counter0));
        _clock.AdvanceTo(Ns(1050));
        Assert.Equal(950, LatchAndRead(Counter0));
    }

    [Fact]
    public void Mode2_TenPeriods_PulsesIrq0TenTimes()
    {
        Load(Counter0, 0x34, 1193);
        _clock.AdvanceTo(Ns(1193 * 10) + 1);
        Assert.Equal(10, _irq0.RisingEdges);
    }

    [Fact]
    public void Mode3_SquareWave_CountsByTwoAndOutputHalfHigh()
    {
        Load(Counter0, 0x36, 1000);
        _clock.AdvanceTo(Ns(100));
        Assert.Equal(800, LatchAndRead(Counter0));
        Assert.Equal(0x80, Status(0) & 0x80);
        _clock.AdvanceTo(Ns(600));
        Assert.Equal(0, Status(0) & 0x80);
        _clock.AdvanceTo(Ns(1000) + 1);
        Assert.Equal(0x80, Status(0) & 0x80);
        Assert.Equal(1, _irq0.RisingEdges);
    }

    [Fact]
    public void Latch_TimeAdvancesBeforeRead_ReturnsLatchedValue()
    {
        Load(Counter0, 0x34, 5000);
        _clock.AdvanceTo(Ns(10));
        _pit.Out8(Control, 0x00);
        _clock.AdvanceTo(Ns(2000));
        int value = _pit.In8(Counter0) | (_pit.In8(Counter0) << 8);
        Assert.Equal(4990, value);
        Assert.Equal(3000, LatchAndRead(Counter0));
    }

    [Fact]
    public void ReadBack_StatusAndCount_StatusFirst()
    {
        Load(Counter0, 0x34, 1000);
        _clock.AdvanceTo(Ns(1));
        _pit.Out8(Control, 0xC2); // latch count and status of counter 0
        byte status = _pit.In8(Counter0);
        int count = _pit.In8(Counter0) | (_pit.In8(Counter0) << 8);
        Assert.Equal(0x80 | 0x30 | (2 << 1), status); // OUT high, lo/hi access, mode 2, binary
        Assert.Equal(999, count);
    }

    [Fact]
    public void Status_AfterControlWordBeforeCount_ReportsNullCount()
    {
        _pit.Out8(Control, 0x30); // counter 0, lo/hi, mode 0
        Assert.Equal(0x40 | 0x30, Status(0)); // OUT low in mode 0, null count
    }

    [Fact]
    public void LowByteOnlyAccess_Write_LoadsAndReadsLowByte()
    {
        _pit.Out8(Control, 0x14); // counter 0, LSB only, mode 2
        _pit.Out8(Counter0, 200);
        _clock.AdvanceTo(Ns(50));
        Assert.Equal(150, _pit.In8(Counter0));
    }

    [Fact]
    public void Bcd_Count_CountsInDecimal()
    {
        Load(Counter0, 0x35, 0x1000); // mode 2, BCD 1000
        _clock.AdvanceTo(Ns(1));
        Assert.Equal(0x0999, LatchAndRead(Counter0));
    }

    [Fact]
    public void Mode0_Expires_OnePulseThenTimerDisarmed()
    {
        Load(Counter0, 0x30, 500);
        Assert.Equal(1, _clock.ArmedTimers);
        _clock.AdvanceTo(Ns(5000));
        Assert.Equal(1, _irq0.RisingEdges);
        Assert.Equal(0, _clock.ArmedTimers);
    }

    [Fact]
    public void Counter2_GateFromPort61_ControlsCountingAndOutputBit()
    {
        Load(Counter2, 0xB0, 100); // counter 2, lo/hi, mode 0
        _clock.AdvanceTo(Ns(500));
        Assert.Equal(0, _pit.PortB.In8(0) & 0x20); // gate low: not counting, OUT low
        Assert.Equal(100, LatchAndRead(Counter2));

        _pit.PortB.Out8(0, 0x01);
        long start = _clock.NowNanoseconds;
        _clock.AdvanceTo(start + Ns(50));
        Assert.Equal(0, _pit.PortB.In8(0) & 0x20);
        _clock.AdvanceTo(start + Ns(101));
        Assert.Equal(0x20, _pit.PortB.In8(0) & 0x20);
        Assert.Equal(0x01, _pit.PortB.In8(0) & 0x03);
    }

    [Fact]
    public void SaveRestore_RoundTrip_ContinuesCount()
    {
        Load(Counter0, 0x34, 1000);
        _clock.AdvanceTo(Ns(100));
        var other = new Pit8254(_clock, new RecordingLine(), _clock);
        other.Restore(_pit.Save());
        other.Out8(Control, 0x00);
        Assert.Equal(900, other.In8(Counter0) | (other.In8(Counter0) << 8));
    }

    [Fact]
    public void Mode1_GateRisingEdge_TriggersOneShotOnCounter2()
    {
        Load(Counter2, 0xB2, 200); // counter 2, lo/hi, mode 1
        _clock.AdvanceTo(Ns(1000));
        Assert.Equal(0x20, _pit.PortB.In8(0) & 0x20); // untriggered: OUT high
        _pit.PortB.Out8(0, 0x01);
        long start = _clock.NowNanoseconds;
        _clock.AdvanceTo(start + Ns(100));
        Assert.Equal(0, _pit.PortB.In8(0) & 0x20); // counting: OUT low
        _clock.AdvanceTo(start + Ns(201));
        Assert.Equal(0x20, _pit.PortB.In8(0) & 0x20);
    }

    [Fact]
    public void Port61_RefreshBit_Toggles()
    {
        byte first = (byte)(_pit.PortB.In8(0) & 0x10);
        _clock.Advance(15_085);
        Assert.NotEqual(first, _pit.PortB.In8(0) & 0x10);
    }

    [Fact]
    public void Reprogram_WhileEdgePending_OnlyNewScheduleFires()
    {
        Load(Counter0, 0x34, 1000);
        _clock.AdvanceTo(Ns(500));
        Load(Counter0, 0x30, 5000); // mode 0, terminal count 5000 clocks after this load
        long loaded = _clock.NowNanoseconds;
        _clock.AdvanceTo(loaded + Ns(4999));
        Assert.Equal(0, _irq0.RisingEdges);
        _clock.AdvanceTo(loaded + Ns(5000));
        Assert.Equal(1, _irq0.RisingEdges);
    }
}
