using Ringvisor.Devices.Legacy;
using Ringvisor.Devices.Tests.Support;

namespace Ringvisor.Devices.Tests.Legacy;

public class CmosRtcTests
{
    private static readonly DateTime s_start = new(2024, 3, 5, 13, 45, 30, DateTimeKind.Utc); // a Tuesday

    private readonly FakeClock _clock = new();
    private readonly RecordingLine _irq = new();
    private readonly CmosRtc _rtc;

    public CmosRtcTests() => _rtc = new CmosRtc(_irq, _clock, s_start, _clock);

    private byte ReadReg(byte index)
    {
        _rtc.Out8(0, index);
        return _rtc.In8(1);
    }

    private void WriteReg(byte index, byte value)
    {
        _rtc.Out8(0, index);
        _rtc.Out8(1, value);
    }

    [Fact]
    public void TimeRegisters_DefaultBcd24h_EncodeStartTime()
    {
        Assert.Equal(0x30, ReadReg(0x00));
        Assert.Equal(0x45, ReadReg(0x02));
        Assert.Equal(0x13, ReadReg(0x04));
        Assert.Equal(0x03, ReadReg(0x06)); // Tuesday = 3 (Sunday = 1)
        Assert.Equal(0x05, ReadReg(0x07));
        Assert.Equal(0x03, ReadReg(0x08));
        Assert.Equal(0x24, ReadReg(0x09));
        Assert.Equal(0x20, ReadReg(0x32));
    }

    [Fact]
    public void TimeRegisters_BinaryMode_EncodeBinary()
    {
        WriteReg(0x0B, 0x06);
        Assert.Equal(30, ReadReg(0x00));
        Assert.Equal(45, ReadReg(0x02));
        Assert.Equal(13, ReadReg(0x04));
        Assert.Equal(24, ReadReg(0x09));
    }

    [Fact]
    public void Hours_12HourBcd_SetsPmBit()
    {
        WriteReg(0x0B, 0x00);
        Assert.Equal(0x81, ReadReg(0x04)); // 1 PM
    }

    [Fact]
    public void Hours_12HourBinaryMidnight_Reads12Am()
    {
        var rtc = new CmosRtc(_irq, _clock, new DateTime(2024, 1, 1, 0, 5, 0, DateTimeKind.Utc), _clock);
        rtc.Out8(0, 0x0B);
        rtc.Out8(1, 0x04);
        rtc.Out8(0, 0x04);
        Assert.Equal(12, rtc.In8(1));
    }

    [Fact]
    public void Time_ClockAdvances_SecondsFollow()
    {
        _clock.Advance(61_000_000_000);
        Assert.Equal(0x31, ReadReg(0x00));
        Assert.Equal(0x46, ReadReg(0x02));
    }

    [Fact]
    public void IndexPort_Bit7_SetsNmiDisableWithoutChangingIndex()
    {
        _rtc.Out8(0, 0x80 | 0x02);
        Assert.True(_rtc.NmiDisabled);
        Assert.Equal(0x45, _rtc.In8(1));
        _rtc.Out8(0, 0x02);
        Assert.False(_rtc.NmiDisabled);
    }

    [Fact]
    public void SetBit_GuestWritesTime_ClockRunsFromNewTime()
    {
        WriteReg(0x0B, 0x82); // SET, 24h, BCD
        WriteReg(0x04, 0x08);
        WriteReg(0x02, 0x00);
        _clock.Advance(5_000_000_000);
        Assert.Equal(0x30, ReadReg(0x00)); // frozen while SET
        WriteReg(0x0B, 0x02);
        _clock.Advance(2_000_000_000);
        Assert.Equal(0x08, ReadReg(0x04));
        Assert.Equal(0x00, ReadReg(0x02));
        Assert.Equal(0x32, ReadReg(0x00));
    }

    [Fact]
    public void TimeWrite_InvalidBcd_Ignored()
    {
        WriteReg(0x08, 0x1A);
        Assert.Equal(0x03, ReadReg(0x08));
    }

    [Fact]
    public void RegisterA_Uip_SetJustBeforeUpdate()
    {
        Assert.Equal(0, ReadReg(0x0A) & 0x80);
        _clock.Advance(999_900_000);
        Assert.Equal(0x80, ReadReg(0x0A) & 0x80);
    }

    [Fact]
    public void RegisterD_ReportsValidRam()
    {
        Assert.Equal(0x80, ReadReg(0x0D));
    }

    [Fact]
    public void PeriodicInterrupt_Enabled_RaisesIrqAtRateUntilCRead()
    {
        WriteReg(0x0A, 0x26); // 1024 Hz
        WriteReg(0x0B, 0x42); // PIE
        Assert.False(_irq.Level);

        _clock.Advance(1_000_000); // a little more than one 976.5 µs period
        Assert.True(_irq.Level);
        Assert.Equal(0xC0, ReadReg(0x0C) & 0xC0);
        Assert.False(_irq.Level);

        _clock.Advance(100_000_000);
        Assert.Equal(2, _irq.RisingEdges);
    }

    [Fact]
    public void UpdateInterrupt_Enabled_RaisesOncePerSecond()
    {
        WriteReg(0x0B, 0x12); // UIE
        _clock.Advance(400_000_000);
        Assert.False(_irq.Level);
        _clock.Advance(700_000_000);
        Assert.True(_irq.Level);
        Assert.Equal(0x90, ReadReg(0x0C) & 0xB0); // IRQF | UF (PF also runs, unmasked by PIE)
    }

    [Fact]
    public void AlarmInterrupt_MatchingTime_SetsAf()
    {
        WriteReg(0x01, 0x32);
        WriteReg(0x03, 0xC0); // any minute
        WriteReg(0x05, 0xC0); // any hour
        WriteReg(0x0B, 0x22); // AIE
        _clock.Advance(1_500_000_000);
        Assert.False(_irq.Level); // 13:45:31 does not match
        _clock.Advance(1_000_000_000);
        Assert.True(_irq.Level);
        Assert.Equal(0xA0, ReadReg(0x0C) & 0xA0);
    }

    [Fact]
    public void Timer_NoInterruptsEnabled_NotArmed()
    {
        Assert.Equal(0, _clock.ArmedTimers);
        WriteReg(0x0B, 0x42);
        Assert.Equal(1, _clock.ArmedTimers);
        WriteReg(0x0B, 0x02);
        Assert.Equal(0, _clock.ArmedTimers);
    }

    [Fact]
    public void SetMemorySize_OneGiBPlusHigh_FillsSizeBytes()
    {
        _rtc.SetMemorySize(0x4000_0000, 0x8000_0000);
        Assert.Equal(0xFFFF, ReadReg(0x30) | (ReadReg(0x31) << 8)); // capped
        Assert.Equal((0x4000_0000 - (16 << 20)) / 0x10000, ReadReg(0x34) | (ReadReg(0x35) << 8));
        Assert.Equal((int)(0x8000_0000u / 0x10000), ReadReg(0x5B) | (ReadReg(0x5C) << 8) | (ReadReg(0x5D) << 16));
        Assert.Equal(640, ReadReg(0x15) | (ReadReg(0x16) << 8));
    }

    [Fact]
    public void CmosRam_GuestWrite_ReadsBack()
    {
        WriteReg(0x50, 0xA5);
        Assert.Equal(0xA5, ReadReg(0x50));
    }

    [Fact]
    public void SaveRestore_RoundTrip_KeepsTimeAndRam()
    {
        WriteReg(0x50, 0x11);
        var saved = _rtc.Save();
        var other = new CmosRtc(new RecordingLine(), _clock, new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc), _clock);
        other.Restore(saved);
        other.Out8(0, 0x50);
        Assert.Equal(0x11, other.In8(1));
        Assert.Equal(s_start, other.GuestTime);
    }
}
