// Motorola MC146818A real-time clock with 128 bytes of CMOS RAM, as on the PC/AT (MC146818A datasheet: "Address Map",
// "Register A" to "Register D"; IBM PC/AT Technical Reference for the CMOS layout).
//
// Wiring: pio.Register(0x70, CmosRtc.WindowLength, rtc, "cmos") — offset 0 is the index port (bit 7 = NMI disable,
// kept for the machine to query through NmiDisabled), offset 1 the data port. IRQ 8 is injected. The machine calls
// SetMemorySize (and SetCpuCount) before boot.
//
// The time of day is the guest's own: it starts at the UTC time given to the constructor and advances with the
// ITimeSource; guest writes to the time registers move it. Registers C flags are computed from the clock whenever
// the guest looks, and a device timer is armed only while an enabled periodic/update/alarm event could raise IRQ 8
// (and only while IRQF is clear, since nothing more can be signalled until register C is read).
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Interrupts;
using Ringvisor.Devices.Platform.Timing;

namespace Ringvisor.Devices.Legacy;

public sealed class CmosRtc : IBusDevice, IDisposable
{
    public const int StateVersion = 1;

    /// <summary>Index and data ports: 0x70 and 0x71.</summary>
    public const int WindowLength = 2;

    public const ushort DefaultPort = 0x70;
    public const int DefaultIrq = 8;

    private const int RamSize = 128;

    // MC146818A address map and PC/AT CMOS layout.
    private const int RegSeconds = 0x00;
    private const int RegSecondsAlarm = 0x01;
    private const int RegMinutes = 0x02;
    private const int RegMinutesAlarm = 0x03;
    private const int RegHours = 0x04;
    private const int RegHoursAlarm = 0x05;
    private const int RegDayOfWeek = 0x06;
    private const int RegDayOfMonth = 0x07;
    private const int RegMonth = 0x08;
    private const int RegYear = 0x09;
    private const int RegA = 0x0A;
    private const int RegB = 0x0B;
    private const int RegC = 0x0C;
    private const int RegD = 0x0D;
    private const int RegCentury = 0x32; // IBM PC/AT: century, BCD on most firmware; we follow register B's DM

    // MC146818A "Register A": UIP, divider DV2-0, rate RS3-0.
    private const byte AUip = 0x80;
    private const byte ADividerMask = 0x70;
    private const byte ADividerNormal = 0x20; // 32.768 kHz time base, oscillator on and counting
    private const byte ARateMask = 0x0F;

    // MC146818A "Register B".
    private const byte BSet = 0x80;
    private const byte BPie = 0x40;
    private const byte BAie = 0x20;
    private const byte BUie = 0x10;
    private const byte BBinary = 0x04; // DM: 1 = binary, 0 = BCD
    private const byte B24Hour = 0x02;

    // MC146818A "Register C".
    private const byte CIrqf = 0x80;
    private const byte CPf = 0x40;
    private const byte CAf = 0x20;
    private const byte CUf = 0x10;

    // Register D: VRT, the battery is good.
    private const byte DValidRam = 0x80;

    private const byte HourPm = 0x80; // 12-hour mode: bit 7 of the hours byte is PM
    private const byte AlarmDontCare = 0xC0; // MC146818A: an alarm byte with bits 7:6 = 11 matches any value

    // UIP rises 244 µs before each update (MC146818A "Update-In-Progress Bit").
    private const long UipLeadNanoseconds = 244_000;
    private const long NanosecondsPerSecond = 1_000_000_000;
    private const long NanosecondsPerTick = 100; // DateTime ticks are 100 ns

    private readonly object _gate = new();
    private readonly IInterruptLine _irq;
    private readonly ITimeSource _time;
    private readonly IDeviceTimer _timer;
    private readonly byte[] _ram = new byte[RamSize];
    private byte _index;
    private bool _nmiDisabled;
    private byte _regA = ADividerNormal | 0x06; // 1024 Hz, the PC/AT BIOS default
    private byte _regB = B24Hour;
    private byte _regC;
    private DateTime _baseTime; // guest time at _baseNs
    private long _baseNs;
    private DateTime _frozen; // time registers while SET = 1
    private long _periodBaseNs;
    private long _lastEventNs;
    private bool _irqLevel;

    public CmosRtc(IInterruptLine irq, ITimeSource time, DateTime startUtc, IDeviceTimerFactory timers)
    {
        ArgumentNullException.ThrowIfNull(timers);
        _irq = irq;
        _time = time;
        _baseNs = time.NowNanoseconds;
        _baseTime = DateTime.SpecifyKind(startUtc, DateTimeKind.Utc);
        _periodBaseNs = _baseNs;
        _lastEventNs = _baseNs;
        _timer = timers.Create(OnTimer);
    }

    /// <summary>Index port bit 7: the guest asked for NMIs to be masked.</summary>
    public bool NmiDisabled
    {
        get
        {
            lock (_gate)
            {
                return _nmiDisabled;
            }
        }
    }

    /// <summary>The RTC's current time of day as the guest sees it.</summary>
    public DateTime GuestTime
    {
        get
        {
            lock (_gate)
            {
                return CurrentTime(_time.NowNanoseconds);
            }
        }
    }

    /// <summary>
    /// Fills the PC/AT memory-size bytes: 0x15/0x16 base memory (640 KiB), 0x17/0x18 and 0x30/0x31 KiB above 1 MiB
    /// (capped at 0xFFFF), 0x34/0x35 64 KiB units above 16 MiB below the PCI hole, 0x5B-0x5D 64 KiB units above
    /// 4 GiB (the QEMU/SeaBIOS convention), and the standard checksum at 0x2E/0x2F over 0x10-0x2D.
    /// </summary>
    public void SetMemorySize(ulong belowFourGiBBytes, ulong aboveFourGiBBytes)
    {
        const ulong OneMiB = 1UL << 20;
        const ulong SixteenMiB = 16UL << 20;
        const ulong Kib64 = 64UL << 10;
        lock (_gate)
        {
            SetWord(0x15, 640);
            ulong ext = belowFourGiBBytes > OneMiB ? Math.Min((belowFourGiBBytes - OneMiB) >> 10, 0xFFFF) : 0;
            SetWord(0x17, (ushort)ext);
            SetWord(0x30, (ushort)ext);
            ulong above16 = belowFourGiBBytes > SixteenMiB ? Math.Min((belowFourGiBBytes - SixteenMiB) / Kib64, 0xFFFF) : 0;
            SetWord(0x34, (ushort)above16);
            ulong high = Math.Min(aboveFourGiBBytes / Kib64, 0xFF_FFFF);
            _ram[0x5B] = (byte)high;
            _ram[0x5C] = (byte)(high >> 8);
            _ram[0x5D] = (byte)(high >> 16);
            UpdateChecksum();
        }
    }

    /// <summary>Byte 0x5F: number of CPUs minus one (QEMU/SeaBIOS convention).</summary>
    public void SetCpuCount(int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        lock (_gate)
        {
            _ram[0x5F] = (byte)Math.Min(count - 1, 255);
        }
    }

    /// <summary>Sets a general-purpose CMOS byte (0x0E-0x7F, except the century at 0x32).</summary>
    public void SetByte(int index, byte value)
    {
        if (index < 0x0E || index >= RamSize || index == RegCentury)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, "only CMOS bytes 0x0E-0x7F other than the century (0x32) can be set");
        }

        lock (_gate)
        {
            _ram[index] = value;
        }
    }

    public void Read(ulong offset, Span<byte> data)
    {
        data.Clear();
        if (data.Length == 0)
        {
            return;
        }

        lock (_gate)
        {
            data[0] = offset switch
            {
                0 => (byte)(_index | (_nmiDisabled ? 0x80 : 0)),
                1 => ReadRegister(_index),
                _ => 0xFF,
            };
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (data.Length == 0)
        {
            return;
        }

        lock (_gate)
        {
            if (offset == 0)
            {
                _index = (byte)(data[0] & 0x7F);
                _nmiDisabled = (data[0] & 0x80) != 0;
            }
            else if (offset == 1)
            {
                WriteRegister(_index, data[0]);
            }
        }
    }

    public CmosRtcState Save()
    {
        lock (_gate)
        {
            long now = _time.NowNanoseconds;
            ProcessEvents(now);
            return new CmosRtcState(StateVersion, [.. _ram], _index, _nmiDisabled, _regA, _regB, _regC, CurrentTime(now));
        }
    }

    public void Restore(CmosRtcState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Version != StateVersion || state.Ram.Count != RamSize)
        {
            throw new ArgumentException($"CMOS state version {state.Version} with {state.Ram.Count} bytes is not supported (expected version {StateVersion}, {RamSize} bytes)", nameof(state));
        }

        lock (_gate)
        {
            for (int i = 0; i < RamSize; i++)
            {
                _ram[i] = state.Ram[i];
            }

            long now = _time.NowNanoseconds;
            _index = (byte)(state.Index & 0x7F);
            _nmiDisabled = state.NmiDisabled;
            _regA = (byte)(state.RegisterA & ~AUip);
            _regB = state.RegisterB;
            _regC = (byte)(state.RegisterC & (CIrqf | CPf | CAf | CUf));
            _baseTime = state.GuestTime;
            _baseNs = now;
            _frozen = state.GuestTime;
            _periodBaseNs = now;
            _lastEventNs = now;
            SetIrq((_regC & CIrqf) != 0);
            Rearm(now);
        }
    }

    public void Dispose() => _timer.Dispose();

    private bool Binary => (_regB & BBinary) != 0;

    private byte ReadRegister(int reg)
    {
        long now = _time.NowNanoseconds;
        switch (reg)
        {
            case RegSeconds:
            case RegMinutes:
            case RegHours:
            case RegDayOfWeek:
            case RegDayOfMonth:
            case RegMonth:
            case RegYear:
            case RegCentury:
                return EncodeTimeField(reg, CurrentTime(now));
            case RegA:
                {
                    byte a = _regA;
                    if ((_regB & BSet) == 0 && (_regA & ADividerMask) == ADividerNormal)
                    {
                        long intoSecond = (CurrentTime(now).Ticks % TimeSpan.TicksPerSecond) * NanosecondsPerTick;
                        if (intoSecond >= NanosecondsPerSecond - UipLeadNanoseconds)
                        {
                            a |= AUip;
                        }
                    }

                    return a;
                }

            case RegB:
                return _regB;
            case RegC:
                {
                    ProcessEvents(now);
                    byte c = _regC;
                    _regC = 0; // reading C clears all flags and releases IRQ (MC146818A "Register C")
                    SetIrq(false);
                    Rearm(now);
                    return c;
                }

            case RegD:
                return DValidRam;
            default:
                return _ram[reg];
        }
    }

    private void WriteRegister(int reg, byte value)
    {
        long now = _time.NowNanoseconds;
        switch (reg)
        {
            case RegSeconds:
            case RegMinutes:
            case RegHours:
            case RegDayOfMonth:
            case RegMonth:
            case RegYear:
            case RegCentury:
                SetTimeField(reg, value, now);
                break;
            case RegDayOfWeek:
                break; // derived from the date
            case RegA:
                {
                    ProcessEvents(now);
                    byte old = _regA;
                    _regA = (byte)(value & ~AUip);
                    if (((old ^ _regA) & (ADividerMask | ARateMask)) != 0)
                    {
                        _periodBaseNs = now; // a new rate or a divider restart starts a new period
                    }

                    Rearm(now);
                    break;
                }

            case RegB:
                WriteRegisterB(value, now);
                break;
            case RegC:
            case RegD:
                break; // read-only
            case RegSecondsAlarm:
            case RegMinutesAlarm:
            case RegHoursAlarm:
                ProcessEvents(now);
                _ram[reg] = value;
                Rearm(now);
                break;
            default:
                _ram[reg] = value;
                break;
        }
    }

    private void WriteRegisterB(byte value, long now)
    {
        ProcessEvents(now);
        bool wasSet = (_regB & BSet) != 0;
        if ((value & BSet) != 0)
        {
            value = (byte)(value & ~BUie); // SET = 1 clears UIE (MC146818A "Register B", SET)
        }

        bool isSet = (value & BSet) != 0;
        if (!wasSet && isSet)
        {
            _frozen = CurrentTime(now);
        }
        else if (wasSet && !isSet)
        {
            _baseTime = _frozen;
            _baseNs = now;
            _lastEventNs = now;
        }

        _regB = value;
        Rearm(now);
    }

    private DateTime CurrentTime(long now)
    {
        if ((_regB & BSet) != 0)
        {
            return _frozen;
        }

        long elapsedTicks = (now - _baseNs) / NanosecondsPerTick;
        long ticks = _baseTime.Ticks + elapsedTicks;
        return ticks >= DateTime.MinValue.Ticks && ticks <= DateTime.MaxValue.Ticks ? new DateTime(ticks, DateTimeKind.Utc) : _baseTime;
    }

    private byte EncodeTimeField(int reg, DateTime t) => reg switch
    {
        RegSeconds => Encode(t.Second),
        RegMinutes => Encode(t.Minute),
        RegHours => EncodeHour(t.Hour),
        RegDayOfWeek => Encode((int)t.DayOfWeek + 1), // 1 = Sunday
        RegDayOfMonth => Encode(t.Day),
        RegMonth => Encode(t.Month),
        RegYear => Encode(t.Year % 100),
        _ => Encode(t.Year / 100),
    };

    private byte EncodeHour(int hour)
    {
        if ((_regB & B24Hour) != 0)
        {
            return Encode(hour);
        }

        int h12 = hour % 12 == 0 ? 12 : hour % 12;
        return (byte)(Encode(h12) | (hour >= 12 ? HourPm : 0));
    }

    private byte Encode(int value) => Binary ? (byte)value : (byte)(((value / 10) << 4) | (value % 10));

    /// <summary>Decodes a BCD or binary byte; -1 for a BCD byte with a digit above 9.</summary>
    private int Decode(byte raw)
    {
        if (Binary)
        {
            return raw;
        }

        int hi = raw >> 4, lo = raw & 0xF;
        return hi > 9 || lo > 9 ? -1 : (hi * 10) + lo;
    }

    private int DecodeHour(byte raw)
    {
        if ((_regB & B24Hour) != 0)
        {
            return Decode(raw);
        }

        int h = Decode((byte)(raw & ~HourPm));
        if (h is < 1 or > 12)
        {
            return -1;
        }

        return (h % 12) + ((raw & HourPm) != 0 ? 12 : 0);
    }

    private void SetTimeField(int reg, byte raw, long now)
    {
        ProcessEvents(now);
        DateTime t = CurrentTime(now);
        int year = t.Year, month = t.Month, day = t.Day, hour = t.Hour, minute = t.Minute, second = t.Second;
        int v = reg == RegHours ? DecodeHour(raw) : Decode(raw);
        switch (reg)
        {
            case RegSeconds: second = v; break;
            case RegMinutes: minute = v; break;
            case RegHours: hour = v; break;
            case RegDayOfMonth: day = v; break;
            case RegMonth: month = v; break;
            case RegYear: year = v < 0 ? -1 : ((year / 100) * 100) + v; break;
            default: year = v < 0 ? -1 : (v * 100) + (year % 100); break;
        }

        // A value the clock cannot hold (month 13, BCD digit 0xA, 31 February) is ignored: the guest sees the
        // register unchanged, as after writing a read-only bit, and the host never throws.
        if (v < 0 || year is < 1 or > 9999 || month is < 1 or > 12 || hour > 23 || minute > 59 || second > 59 ||
            day < 1 || day > DateTime.DaysInMonth(year, month))
        {
            return;
        }

        var updated = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc).AddTicks(t.Ticks % TimeSpan.TicksPerSecond);
        if ((_regB & BSet) != 0)
        {
            _frozen = updated;
        }
        else
        {
            _baseTime = updated;
            _baseNs = now;
            _lastEventNs = now;
        }

        Rearm(now);
    }

    private long PeriodNanoseconds()
    {
        int rate = _regA & ARateMask;
        if (rate == 0 || (_regA & ADividerMask) != ADividerNormal)
        {
            return 0;
        }

        // RS3-0 (MC146818A periodic interrupt rate table): rates 1 and 2 behave as 8 and 9 on a 32.768 kHz time base; otherwise 32768 >> (rate - 1).
        if (rate < 3)
        {
            rate += 7;
        }

        long hz = 32768 >> (rate - 1);
        return NanosecondsPerSecond / hz;
    }

    /// <summary>Nanoseconds from <paramref name="now"/> to the next whole guest second.</summary>
    private long NanosecondsToNextSecond(long now)
    {
        long intoSecond = (CurrentTime(now).Ticks % TimeSpan.TicksPerSecond) * NanosecondsPerTick;
        return NanosecondsPerSecond - intoSecond;
    }

    /// <summary>Sets PF/UF/AF for everything that happened since the last call, and raises IRQ 8 on a new IRQF.</summary>
    private void ProcessEvents(long now)
    {
        long last = _lastEventNs;
        if (now <= last)
        {
            return;
        }

        _lastEventNs = now;
        long period = PeriodNanoseconds();
        if (period > 0 && (now - _periodBaseNs) / period > (last - _periodBaseNs) / period)
        {
            _regC |= CPf;
        }

        if ((_regB & BSet) == 0 && (_regA & ADividerMask) == ADividerNormal)
        {
            // An update cycle ends at each whole guest second crossed in (last, now].
            long secondsNow = CurrentTime(now).Ticks / TimeSpan.TicksPerSecond;
            long secondsLast = CurrentTime(last).Ticks / TimeSpan.TicksPerSecond;
            if (secondsNow > secondsLast)
            {
                _regC |= CUf;
                if (AlarmMatches(new DateTime(secondsNow * TimeSpan.TicksPerSecond, DateTimeKind.Utc)))
                {
                    _regC |= CAf;
                }
            }
        }

        byte enabled = (byte)(_regB & (BPie | BAie | BUie)); // PIE/AIE/UIE line up with PF/AF/UF
        if ((_regC & enabled) != 0 && (_regC & CIrqf) == 0)
        {
            _regC |= CIrqf;
            SetIrq(true);
        }
    }

    private bool AlarmMatches(DateTime t) =>
        AlarmFieldMatches(_ram[RegSecondsAlarm], Encode(t.Second)) &&
        AlarmFieldMatches(_ram[RegMinutesAlarm], Encode(t.Minute)) &&
        AlarmFieldMatches(_ram[RegHoursAlarm], EncodeHour(t.Hour));

    private static bool AlarmFieldMatches(byte alarm, byte value) => (alarm & AlarmDontCare) == AlarmDontCare || alarm == value;

    /// <summary>Arms the timer for the next event that would raise IRQ 8, or disarms it when none can.</summary>
    private void Rearm(long now)
    {
        long next = long.MaxValue;
        if ((_regC & CIrqf) == 0)
        {
            long period = PeriodNanoseconds();
            if ((_regB & BPie) != 0 && period > 0)
            {
                long n = ((now - _periodBaseNs) / period) + 1;
                next = _periodBaseNs + (n * period);
            }

            if ((_regB & (BUie | BAie)) != 0 && (_regB & BSet) == 0 && (_regA & ADividerMask) == ADividerNormal)
            {
                next = Math.Min(next, now + NanosecondsToNextSecond(now));
            }
        }

        if (next == long.MaxValue)
        {
            _timer.Disarm();
        }
        else
        {
            _timer.Arm(next);
        }
    }

    private void OnTimer()
    {
        lock (_gate)
        {
            long now = _time.NowNanoseconds;
            ProcessEvents(now);
            Rearm(now);
        }
    }

    private void SetIrq(bool level)
    {
        if (level != _irqLevel)
        {
            _irqLevel = level;
            _irq.SetLevel(level);
        }
    }

    private void SetWord(int index, ushort value)
    {
        _ram[index] = (byte)value;
        _ram[index + 1] = (byte)(value >> 8);
    }

    private void UpdateChecksum()
    {
        // IBM PC/AT: 16-bit sum of bytes 0x10-0x2D, stored big-endian at 0x2E/0x2F.
        int sum = 0;
        for (int i = 0x10; i <= 0x2D; i++)
        {
            sum += _ram[i];
        }

        _ram[0x2E] = (byte)(sum >> 8);
        _ram[0x2F] = (byte)sum;
    }
}
