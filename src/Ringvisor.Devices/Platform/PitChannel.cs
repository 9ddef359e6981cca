// One counter of the Intel 8254 (datasheet order 231164: "Operating modes", "Read operations", "Read-back command").
// The counter is never stepped: its value and OUT pin are computed from the time elapsed since the count was loaded,
// at 1.193182 MHz. Not thread-safe; Pit8254 holds the lock.
namespace Ringvisor.Devices.Platform;

internal sealed class PitChannel
{
    /// <summary>The PC's 8254 input clock: 14.31818 MHz / 12.</summary>
    public const long InputHz = 1_193_182;

    private const long NanosecondsPerSecond = 1_000_000_000;

    // Access modes (control word bits 5:4).
    public const int AccessLatch = 0;
    public const int AccessLow = 1;
    public const int AccessHigh = 2;
    public const int AccessLowHigh = 3;

    private const int NoLatch = -1;

    private readonly bool _gateFixedHigh;
    private int _mode;
    private int _access = AccessLowHigh;
    private bool _bcd;
    private int _reload; // binary value of the last count written (0 means the maximum count)
    private bool _armed; // a count has been loaded
    private bool _counting; // the counter decrements (gate allows it; modes 1/5 triggered)
    private bool _gate;
    private long _loadNs; // when counting (re)started, adjusted for time spent paused
    private long _pausedElapsedNs;
    private bool _writeHighNext;
    private byte _partialWrite;
    private bool _readHighNext;
    private int _latchedCount = NoLatch;
    private bool _latchedHighNext;
    private int _latchedStatus = NoLatch;
    // No BIOS runs before the guest; report what a PC BIOS leaves behind (a loaded count), because Linux's
    // KASLR entropy read (arch/x86/lib/kaslr.c i8254()) spins until read-back status shows null count clear.
    private bool _nullCount;

    public PitChannel(bool gateFixedHigh)
    {
        _gateFixedHigh = gateFixedHigh;
        _gate = true;
    }

    public int Mode => _mode;

    public bool Gate => _gate;

    /// <summary>Incremented whenever counting restarts (load, gate trigger), so a pending timer deadline can be recomputed.</summary>
    public int Generation { get; private set; }

    /// <summary>Control word for this counter (not a latch or read-back command).</summary>
    public void Program(int access, int mode, bool bcd)
    {
        _access = access;
        _mode = mode > 5 ? mode - 4 : mode; // modes 6 and 7 are aliases of 2 and 3
        _bcd = bcd;
        _armed = false;
        _counting = false;
        _writeHighNext = false;
        _readHighNext = false;
        _latchedCount = NoLatch;
        _latchedStatus = NoLatch;
        _nullCount = true;
        Generation++;
    }

    public void LatchCount(long now)
    {
        if (_latchedCount == NoLatch)
        {
            _latchedCount = EncodedCount(now);
            _latchedHighNext = false;
        }
    }

    public void LatchStatus(long now)
    {
        if (_latchedStatus == NoLatch)
        {
            _latchedStatus = Status(now);
        }
    }

    public byte Read(long now)
    {
        if (_latchedStatus != NoLatch)
        {
            byte s = (byte)_latchedStatus;
            _latchedStatus = NoLatch;
            return s;
        }

        if (_latchedCount != NoLatch)
        {
            int v = _latchedCount;
            switch (_access)
            {
                case AccessLow:
                    _latchedCount = NoLatch;
                    return (byte)v;
                case AccessHigh:
                    _latchedCount = NoLatch;
                    return (byte)(v >> 8);
                default:
                    if (_latchedHighNext)
                    {
                        _latchedCount = NoLatch;
                        _latchedHighNext = false;
                        return (byte)(v >> 8);
                    }

                    _latchedHighNext = true;
                    return (byte)v;
            }
        }

        int count = EncodedCount(now);
        switch (_access)
        {
            case AccessLow:
                return (byte)count;
            case AccessHigh:
                return (byte)(count >> 8);
            default:
                _readHighNext = !_readHighNext;
                return _readHighNext ? (byte)count : (byte)(count >> 8);
        }
    }

    public void Write(byte value, long now)
    {
        switch (_access)
        {
            case AccessLow:
                Load(value, now);
                break;
            case AccessHigh:
                Load(value << 8, now);
                break;
            default:
                if (!_writeHighNext)
                {
                    _partialWrite = value;
                    _writeHighNext = true;
                    if (_mode == 0)
                    {
                        // Mode 0: writing the first byte stops the count (OUT stays low until the new count expires).
                        _armed = false;
                        _counting = false;
                    }
                }
                else
                {
                    _writeHighNext = false;
                    Load(_partialWrite | (value << 8), now);
                }

                break;
        }
    }

    /// <summary>Gate input (channel 2 only; 0 and 1 are tied high on the PC).</summary>
    public void SetGate(bool gate, long now)
    {
        if (_gateFixedHigh || gate == _gate)
        {
            return;
        }

        _gate = gate;
        if (!_armed)
        {
            return;
        }

        if (!gate)
        {
            // Modes 0, 2, 3, 4: a low gate suspends counting (modes 2/3 also force OUT high).
            if (_mode is 0 or 2 or 3 or 4 && _counting)
            {
                _pausedElapsedNs = now - _loadNs;
                _counting = false;
            }

            return;
        }

        switch (_mode)
        {
            case 0:
            case 4:
                _loadNs = now - _pausedElapsedNs; // resume where it stopped
                _counting = true;
                break;
            default:
                _loadNs = now; // modes 1, 2, 3, 5: a rising gate (re)triggers a full count
                _counting = true;
                break;
        }

        Generation++;
    }

    public bool Output(long now)
    {
        if (!_armed)
        {
            return _mode != 0; // after a control word OUT is low in mode 0, high in every other mode
        }

        if (!_counting)
        {
            return _mode switch
            {
                0 => _pausedElapsedNs > 0 && Ticks(_pausedElapsedNs) >= Period,
                1 or 5 => true, // waiting for a trigger
                _ => true,
            };
        }

        long d = Ticks(now - _loadNs);
        long n = Period;
        return _mode switch
        {
            0 or 1 => d >= n,
            2 => d % n != n - 1,
            3 => d % n < (n + 1) / 2,
            _ => d != n, // 4, 5: one clock low at terminal count
        };
    }

    /// <summary>Ticks after the load at which OUT next rises (the IRQ 0 edge), or -1 when it never will again.</summary>
    public long NextRisingEdgeTicks(long now)
    {
        if (!_armed || !_counting)
        {
            return -1;
        }

        long d = Ticks(now - _loadNs);
        long n = Period;
        return _mode switch
        {
            0 or 1 => d < n ? n : -1,
            2 or 3 => ((d / n) + 1) * n,
            _ => d < n + 1 ? n + 1 : -1,
        };
    }

    /// <summary>Host time of a tick count relative to the current load, rounded up.</summary>
    public long TicksToNanoseconds(long ticks) => _loadNs + (long)((((Int128)ticks * NanosecondsPerSecond) + InputHz - 1) / InputHz);

    public byte Status(long now)
    {
        // Read-back status byte: OUT, null count, RW1-0, M2-0, BCD.
        int s = (Output(now) ? 0x80 : 0) | (_nullCount ? 0x40 : 0) | (_access << 4) | (_mode << 1) | (_bcd ? 1 : 0);
        return (byte)s;
    }

    public PitChannelState Save(long now) => new(
        _mode, _access, _bcd, _reload, _armed, _counting, _gate, _counting ? now - _loadNs : _pausedElapsedNs,
        _writeHighNext, _readHighNext, _latchedCount, _latchedHighNext, _latchedStatus, _nullCount, _partialWrite);

    public void Restore(PitChannelState s, long now)
    {
        _mode = s.Mode is >= 0 and <= 5 ? s.Mode : 0;
        _access = s.AccessMode is >= AccessLow and <= AccessLowHigh ? s.AccessMode : AccessLowHigh;
        _bcd = s.Bcd;
        _reload = s.Reload & 0xFFFF;
        _armed = s.Armed;
        _counting = s.Counting;
        _gate = _gateFixedHigh || s.Gate;
        long elapsed = Math.Max(0, s.ElapsedNanoseconds);
        _loadNs = now - elapsed;
        _pausedElapsedNs = elapsed;
        _writeHighNext = s.WriteHighNext;
        _readHighNext = s.ReadHighNext;
        _latchedCount = s.LatchedCount is >= NoLatch and <= 0xFFFF ? s.LatchedCount : NoLatch;
        _latchedHighNext = s.LatchedHighNext;
        _latchedStatus = s.LatchedStatus is >= NoLatch and <= 0xFF ? s.LatchedStatus : NoLatch;
        _nullCount = s.NullCount;
        _partialWrite = s.PartialWrite;
        Generation++;
    }

    /// <summary>The count N in clocks: a written 0 means 2^16 (binary) or 10^4 (BCD).</summary>
    private long Period => _reload == 0 ? Modulus : _reload;

    private long Modulus => _bcd ? 10_000 : 0x1_0000;

    private static long Ticks(long nanoseconds) => nanoseconds <= 0 ? 0 : (long)((Int128)nanoseconds * InputHz / NanosecondsPerSecond);

    private void Load(int raw, long now)
    {
        _reload = _bcd ? FromBcd(raw) : raw & 0xFFFF;
        _armed = true;
        _nullCount = false;
        _loadNs = now;
        _pausedElapsedNs = 0;

        // Modes 1 and 5 wait for a gate trigger; the others count now if the gate allows.
        _counting = _mode is not (1 or 5) && _gate;
        Generation++;
    }

    /// <summary>The counter value as the guest reads it (BCD-encoded in BCD mode).</summary>
    private int EncodedCount(long now)
    {
        long value;
        if (!_armed)
        {
            value = _reload;
        }
        else
        {
            long d = _counting ? Ticks(now - _loadNs) : Ticks(_pausedElapsedNs);
            if (!_counting && _mode is 1 or 5)
            {
                d = 0;
            }

            long n = Period;
            long m = Modulus;
            value = _mode switch
            {
                2 => n - (d % n),
                3 => (n - ((2 * d) % n)) & ~1L,
                _ => (((n - d) % m) + m) % m, // 0, 1, 4, 5 keep counting down through 0 (wrapping)
            };
            value %= m; // N = 2^16 (or 10^4) reads as 0
        }

        return _bcd ? ToBcd((int)value) : (int)value & 0xFFFF;
    }

    private static int ToBcd(int v) => ((v / 1000 % 10) << 12) | ((v / 100 % 10) << 8) | ((v / 10 % 10) << 4) | (v % 10);

    /// <summary>BCD count to binary; a nibble above 9 is taken as 9 (the part's behaviour is undefined).</summary>
    private static int FromBcd(int raw)
    {
        int v = 0;
        for (int shift = 12; shift >= 0; shift -= 4)
        {
            v = (v * 10) + Math.Min((raw >> shift) & 0xF, 9);
        }

        return v;
    }
}
