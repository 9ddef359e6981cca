// Intel 8254 programmable interval timer as wired on the PC: counter 0 drives IRQ 0, counter 1 (DRAM refresh) is
// free-running and unconnected, counter 2 feeds the speaker with its gate on port 0x61 bit 0 and its OUT readable
// at port 0x61 bit 5 (8254 datasheet order 231164; IBM PC/AT Technical Reference "System control port B").
//
// Wiring (bt engine only; KVM has an in-kernel PIT):
//   pio.Register(0x40, Pit8254.WindowLength, pit, "pit");
//   pio.Register(0x61, 1, pit.PortB, "port61");
// IRQ 0 is an injected line pulsed on each rising edge of counter 0's OUT (PlatformInterruptController sends it to
// PIC IRQ 0 and IOAPIC pin 2). Counters are computed from the ITimeSource; a device timer is armed only for counter
// 0's next rising edge, and edges missed while the host was slow are coalesced into one pulse.
//
// Simplifications: a new count written while a counter runs in mode 2 or 3 takes effect at once (not at the end of
// the current period); port 0x61 bits 6/7 (NMI sources) always read 0.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Interrupts;
using Ringvisor.Devices.Platform.Timing;

namespace Ringvisor.Devices.Platform;

public sealed class Pit8254 : IBusDevice, IDisposable
{
    public const int StateVersion = 1;

    /// <summary>Ports 0x40-0x43: counters 0-2 and the control word register.</summary>
    public const int WindowLength = 4;

    public const ushort DefaultPort = 0x40;
    public const ushort PortBAddress = 0x61;

    private const int ControlRegister = 3;
    private const int ReadBackSelect = 3; // SC1:SC0 = 11 selects the read-back command

    // Read-back command (8254 "Read-back command"): bit 5 = 0 latches counts, bit 4 = 0 latches status, bits 3:1 pick counters.
    private const byte ReadBackNoCount = 0x20;
    private const byte ReadBackNoStatus = 0x10;

    // Port 0x61 (PC/AT system control port B).
    private const byte PortBGate2 = 0x01;
    private const byte PortBWritable = 0x0F; // gate 2, speaker data, parity/channel-check enables
    private const byte PortBRefresh = 0x10;
    private const byte PortBOut2 = 0x20;

    // Port 0x61 bit 4 toggles with each DRAM refresh request, every 15.085 µs on the PC/AT; BIOS and Linux delay
    // loops watch it.
    private const long RefreshToggleNanoseconds = 15_085;

    private readonly object _gate = new();
    private readonly ITimeSource _time;
    private readonly IInterruptLine _irq0;
    private readonly IDeviceTimer _timer;
    private readonly PitChannel[] _channels = [new(gateFixedHigh: true), new(gateFixedHigh: true), new(gateFixedHigh: false)];
    private byte _portB;
    private long _nextEdgeTicks = -1;
    private int _nextEdgeGeneration;

    public Pit8254(ITimeSource time, IInterruptLine irq0, IDeviceTimerFactory timers)
    {
        ArgumentNullException.ThrowIfNull(timers);
        _time = time;
        _irq0 = irq0;
        _timer = timers.Create(OnTimer);
        PortB = new PortBDevice(this);

        // Counter 2's gate is low until software sets port 0x61 bit 0.
        _channels[2].SetGate(false, time.NowNanoseconds);
    }

    /// <summary>Port 0x61, one byte.</summary>
    public IBusDevice PortB { get; }

    public void Read(ulong offset, Span<byte> data)
    {
        data.Clear();
        if (data.Length == 0 || offset >= ControlRegister)
        {
            return; // the control word register is write-only
        }

        lock (_gate)
        {
            data[0] = _channels[offset].Read(_time.NowNanoseconds);
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (data.Length == 0 || offset >= WindowLength)
        {
            return;
        }

        lock (_gate)
        {
            long now = _time.NowNanoseconds;
            if (offset == ControlRegister)
            {
                WriteControl(data[0], now);
            }
            else
            {
                _channels[offset].Write(data[0], now);
            }

            Reschedule(now);
        }
    }

    public Pit8254State Save()
    {
        lock (_gate)
        {
            long now = _time.NowNanoseconds;
            return new Pit8254State(StateVersion, [.. _channels.Select(c => c.Save(now))], _portB);
        }
    }

    public void Restore(Pit8254State state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Version != StateVersion || state.Channels.Count != _channels.Length)
        {
            throw new ArgumentException($"PIT state version {state.Version} with {state.Channels.Count} counters is not supported (expected version {StateVersion}, 3 counters)", nameof(state));
        }

        lock (_gate)
        {
            long now = _time.NowNanoseconds;
            for (int i = 0; i < _channels.Length; i++)
            {
                _channels[i].Restore(state.Channels[i], now);
            }

            _portB = (byte)(state.PortB & PortBWritable);
            _nextEdgeTicks = -1;
            Reschedule(now);
        }
    }

    /// <summary>Counter 2's OUT pin (what the speaker would hear), for the machine's curiosity and tests.</summary>
    public bool Counter2Output
    {
        get
        {
            lock (_gate)
            {
                return _channels[2].Output(_time.NowNanoseconds);
            }
        }
    }

    public void Dispose() => _timer.Dispose();

    private void WriteControl(byte value, long now)
    {
        int select = value >> 6;
        if (select == ReadBackSelect)
        {
            for (int i = 0; i < _channels.Length; i++)
            {
                if ((value & (2 << i)) == 0)
                {
                    continue;
                }

                // Status is latched before the count so a following read returns the status byte first.
                if ((value & ReadBackNoStatus) == 0)
                {
                    _channels[i].LatchStatus(now);
                }

                if ((value & ReadBackNoCount) == 0)
                {
                    _channels[i].LatchCount(now);
                }
            }

            return;
        }

        int access = (value >> 4) & 3;
        if (access == PitChannel.AccessLatch)
        {
            _channels[select].LatchCount(now);
        }
        else
        {
            _channels[select].Program(access, (value >> 1) & 7, (value & 1) != 0);
        }
    }

    private byte ReadPortB()
    {
        lock (_gate)
        {
            long now = _time.NowNanoseconds;
            byte v = _portB;
            if ((now / RefreshToggleNanoseconds & 1) != 0)
            {
                v |= PortBRefresh;
            }

            if (_channels[2].Output(now))
            {
                v |= PortBOut2;
            }

            return v;
        }
    }

    private void WritePortB(byte value)
    {
        lock (_gate)
        {
            long now = _time.NowNanoseconds;
            _portB = (byte)(value & PortBWritable);
            _channels[2].SetGate((value & PortBGate2) != 0, now);
        }
    }

    /// <summary>Re-derives counter 0's next IRQ edge after the guest reprogrammed it, and arms the timer for it.</summary>
    private void Reschedule(long now)
    {
        var c0 = _channels[0];
        if (_nextEdgeGeneration != c0.Generation || _nextEdgeTicks < 0)
        {
            _nextEdgeGeneration = c0.Generation;
            _nextEdgeTicks = c0.NextRisingEdgeTicks(now);
        }

        if (_nextEdgeTicks < 0)
        {
            _timer.Disarm();
            return;
        }

        _timer.Arm(c0.TicksToNanoseconds(_nextEdgeTicks));
    }

    private void OnTimer()
    {
        bool pulse = false;
        lock (_gate)
        {
            long now = _time.NowNanoseconds;
            var c0 = _channels[0];
            if (_nextEdgeGeneration == c0.Generation && _nextEdgeTicks >= 0 && now >= c0.TicksToNanoseconds(_nextEdgeTicks))
            {
                pulse = true;

                // The next edge strictly after now: periods missed while the host was busy collapse into this pulse.
                _nextEdgeTicks = c0.NextRisingEdgeTicks(now);
                if (_nextEdgeTicks >= 0 && c0.TicksToNanoseconds(_nextEdgeTicks) <= now)
                {
                    _nextEdgeTicks = c0.NextRisingEdgeTicks(now + 1);
                }
            }

            Reschedule(now);
        }

        if (pulse)
        {
            _irq0.Pulse();
        }
    }

    private sealed class PortBDevice(Pit8254 owner) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data)
        {
            data.Clear();
            if (data.Length > 0 && offset == 0)
            {
                data[0] = owner.ReadPortB();
            }
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            if (data.Length > 0 && offset == 0)
            {
                owner.WritePortB(data[0]);
            }
        }
    }
}
