// Intel 8042 keyboard controller with a minimal PS/2 keyboard and no mouse (IBM PC/AT Technical Reference, "Keyboard
// controller"; the command set also documented in Linux drivers/input/serio/i8042.h).
//
// Ports 0x60 (data) and 0x64 (status/command) are not contiguous-and-exclusive (0x61 belongs to the PIT's port B),
// so the controller exposes two one-byte windows:
//   pio.Register(0x60, 1, i8042.DataPort, "i8042-data");
//   pio.Register(0x64, 1, i8042.CommandPort, "i8042-cmd");
// IRQ 1 (keyboard) and IRQ 12 (AUX) are injected. A reset pulse (command 0xF0-0xFF with bit 0 clear, e.g. 0xFE,
// or output port bit 0 written as 0 via 0xD1) calls IVmControl.RequestStop(VmStopReason.Reset, 0).
//
// The AUX port has no device behind it: the AUX loopback (0xD3) works, bytes sent to the mouse (0xD4) are answered
// with 0xFE from the AUX port, so Linux's psmouse probe fails cleanly. The keyboard answers the commands atkbd uses
// to probe (reset, identify, set LEDs, scancode set, typematic, enable/disable).
using Ringvisor.Core.Bus;
using Ringvisor.Core.Interrupts;
using Ringvisor.Core.Vm;

namespace Ringvisor.Devices.Legacy;

public sealed class I8042
{
    public const int StateVersion = 1;

    // Status register bits (8042 status, i8042.h I8042_STR_*).
    private const byte StatusOutputFull = 0x01;
    private const byte StatusSystemFlag = 0x04;
    private const byte StatusCommand = 0x08; // last write was to 0x64
    private const byte StatusKeyLock = 0x10; // 1 = keyboard not inhibited
    private const byte StatusAuxData = 0x20;

    // Command byte bits (i8042.h I8042_CTR_*).
    private const byte CtrKbdInt = 0x01;
    private const byte CtrAuxInt = 0x02;
    private const byte CtrSystemFlag = 0x04;
    private const byte CtrKbdDisable = 0x10;
    private const byte CtrAuxDisable = 0x20;
    private const byte CtrTranslate = 0x40;

    // Output port bits: bit 0 is the CPU reset line (active low), bit 1 the A20 gate.
    private const byte OutputPortReset = 0x01;
    private const byte OutputPortA20 = 0x02;

    // Controller commands written to 0x64.
    private const byte CmdReadCtr = 0x20;
    private const byte CmdWriteCtr = 0x60;
    private const byte CmdAuxDisable = 0xA7;
    private const byte CmdAuxEnable = 0xA8;
    private const byte CmdAuxTest = 0xA9;
    private const byte CmdSelfTest = 0xAA;
    private const byte CmdKbdTest = 0xAB;
    private const byte CmdKbdDisable = 0xAD;
    private const byte CmdKbdEnable = 0xAE;
    private const byte CmdReadInputPort = 0xC0;
    private const byte CmdReadOutputPort = 0xD0;
    private const byte CmdWriteOutputPort = 0xD1;
    private const byte CmdWriteKbdOutput = 0xD2;
    private const byte CmdWriteAuxOutput = 0xD3;
    private const byte CmdWriteAux = 0xD4;
    private const byte CmdDisableA20 = 0xDD;
    private const byte CmdEnableA20 = 0xDF;
    private const byte CmdPulseFirst = 0xF0;

    private const byte SelfTestPassed = 0x55;
    private const byte InterfaceTestPassed = 0x00;

    // PS/2 keyboard protocol bytes.
    private const byte KbdAck = 0xFA;
    private const byte KbdResend = 0xFE;
    private const byte KbdBatOk = 0xAA;
    private const byte KbdSetLeds = 0xED;
    private const byte KbdEcho = 0xEE;
    private const byte KbdScancodeSet = 0xF0;
    private const byte KbdIdentify = 0xF2;
    private const byte KbdTypematic = 0xF3;
    private const byte KbdEnable = 0xF4;
    private const byte KbdDisable = 0xF5;
    private const byte KbdDefaults = 0xF6;
    private const byte KbdReset = 0xFF;

    // A bounded output queue: a guest that never reads cannot make us grow without limit.
    private const int MaxOutput = 64;
    private const ushort AuxFlag = 0x100;

    private readonly object _gate = new();
    private readonly IInterruptLine _kbdIrq;
    private readonly IInterruptLine _auxIrq;
    private readonly IVmControl _control;
    private readonly Queue<ushort> _output = new();
    private byte _ctr = CtrKbdInt | CtrSystemFlag | CtrTranslate;
    private byte _outputPort = OutputPortReset | OutputPortA20;
    private byte _status = StatusSystemFlag | StatusKeyLock;
    private int _pendingCommand = -1;
    private int _kbdPendingCommand = -1;
    private bool _kbdScanning = true;
    private bool _kbdIrqLevel;
    private bool _auxIrqLevel;

    public I8042(IVmControl control, IInterruptLine keyboardIrq, IInterruptLine auxIrq)
    {
        _control = control;
        _kbdIrq = keyboardIrq;
        _auxIrq = auxIrq;
        DataPort = new Port(this, isCommand: false);
        CommandPort = new Port(this, isCommand: true);
    }

    /// <summary>Port 0x60.</summary>
    public IBusDevice DataPort { get; }

    /// <summary>Port 0x64.</summary>
    public IBusDevice CommandPort { get; }

    /// <summary>The A20 gate as last written through the output port (informational; memory is not wrapped).</summary>
    public bool A20Enabled
    {
        get
        {
            lock (_gate)
            {
                return (_outputPort & OutputPortA20) != 0;
            }
        }
    }

    /// <summary>Queues scancode bytes from the host keyboard (ignored while the keyboard is disabled).</summary>
    public void EnqueueKeyboardBytes(ReadOnlySpan<byte> bytes)
    {
        lock (_gate)
        {
            if (!_kbdScanning || (_ctr & CtrKbdDisable) != 0)
            {
                return;
            }

            foreach (byte b in bytes)
            {
                Push(b, aux: false);
            }

            UpdateIrqs();
        }
    }

    public I8042State Save()
    {
        lock (_gate)
        {
            return new I8042State(StateVersion, _ctr, _outputPort, _status, _pendingCommand, _kbdPendingCommand, _kbdScanning, [.. _output]);
        }
    }

    public void Restore(I8042State state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Version != StateVersion)
        {
            throw new ArgumentException($"i8042 state version {state.Version} is not supported (expected {StateVersion})", nameof(state));
        }

        lock (_gate)
        {
            _ctr = state.CommandByte;
            _outputPort = state.OutputPort;
            _status = state.Status;
            _pendingCommand = state.PendingCommand;
            _kbdPendingCommand = state.KeyboardPendingCommand;
            _kbdScanning = state.KeyboardScanning;
            _output.Clear();
            foreach (ushort b in state.Output.Take(MaxOutput))
            {
                _output.Enqueue(b);
            }

            UpdateIrqs();
        }
    }

    private byte ReadStatus()
    {
        lock (_gate)
        {
            byte s = (byte)(_status & ~(StatusOutputFull | StatusAuxData));
            if (_output.TryPeek(out ushort head))
            {
                s |= StatusOutputFull;
                if ((head & AuxFlag) != 0)
                {
                    s |= StatusAuxData;
                }
            }

            return s;
        }
    }

    private byte ReadData()
    {
        lock (_gate)
        {
            // An empty buffer reads back the last byte on real controllers; 0 is as good for a guest that did not
            // check OBF.
            byte b = _output.TryDequeue(out ushort v) ? (byte)v : (byte)0;

            // Drop the line before re-evaluating so the next queued byte gives the edge-triggered PIC a new edge.
            LowerIrqs();
            UpdateIrqs();
            return b;
        }
    }

    private void WriteCommand(byte cmd)
    {
        bool reset = false;
        lock (_gate)
        {
            _status |= StatusCommand;
            _pendingCommand = -1;
            switch (cmd)
            {
                case CmdReadCtr:
                    Push(_ctr, aux: false);
                    break;
                case > CmdReadCtr and < CmdWriteCtr:
                    Push(0, aux: false); // controller RAM beyond the command byte reads as 0
                    break;
                case >= CmdWriteCtr and < 0x80:
                case CmdWriteOutputPort:
                case CmdWriteKbdOutput:
                case CmdWriteAuxOutput:
                case CmdWriteAux:
                    _pendingCommand = cmd;
                    break;
                case CmdAuxDisable:
                    _ctr |= CtrAuxDisable;
                    break;
                case CmdAuxEnable:
                    _ctr = (byte)(_ctr & ~CtrAuxDisable);
                    break;
                case CmdAuxTest:
                case CmdKbdTest:
                    Push(InterfaceTestPassed, aux: false);
                    break;
                case CmdSelfTest:
                    _status |= StatusSystemFlag;
                    Push(SelfTestPassed, aux: false);
                    break;
                case CmdKbdDisable:
                    _ctr |= CtrKbdDisable;
                    break;
                case CmdKbdEnable:
                    _ctr = (byte)(_ctr & ~CtrKbdDisable);
                    break;
                case CmdReadInputPort:
                    // Input port bit 7: keyboard not inhibited; bit 5: no manufacturing jumper.
                    Push(0xA0, aux: false);
                    break;
                case CmdReadOutputPort:
                    Push(_outputPort, aux: false);
                    break;
                case CmdDisableA20:
                    _outputPort = (byte)(_outputPort & ~OutputPortA20);
                    break;
                case CmdEnableA20:
                    _outputPort |= OutputPortA20;
                    break;
                case >= CmdPulseFirst:
                    // Pulse output port lines 0-3 low for 6 µs; the low nibble's clear bits select the lines.
                    reset = (cmd & OutputPortReset) == 0;
                    break;
                default:
                    break; // unknown commands are ignored, as on most controllers
            }

            UpdateIrqs();
        }

        if (reset)
        {
            _control.RequestStop(VmStopReason.Reset, 0);
        }
    }

    private void WriteData(byte value)
    {
        bool reset = false;
        lock (_gate)
        {
            _status = (byte)(_status & ~StatusCommand);
            int pending = _pendingCommand;
            _pendingCommand = -1;
            switch (pending)
            {
                case CmdWriteCtr:
                    _ctr = value;
                    _status = (byte)((_status & ~StatusSystemFlag) | (value & CtrSystemFlag));
                    break;
                case > CmdWriteCtr and < 0x80:
                    break; // controller RAM writes are accepted and forgotten
                case CmdWriteOutputPort:
                    _outputPort = value;
                    reset = (value & OutputPortReset) == 0;
                    break;
                case CmdWriteKbdOutput:
                    Push(value, aux: false);
                    break;
                case CmdWriteAuxOutput:
                    Push(value, aux: true);
                    break;
                case CmdWriteAux:
                    // No mouse is attached: the controller reports the transmission as failed.
                    Push(KbdResend, aux: true);
                    break;
                default:
                    _ctr = (byte)(_ctr & ~CtrKbdDisable); // writing to the keyboard re-enables its interface
                    KeyboardWrite(value);
                    break;
            }

            UpdateIrqs();
        }

        if (reset)
        {
            _control.RequestStop(VmStopReason.Reset, 0);
        }
    }

    private void KeyboardWrite(byte value)
    {
        int pending = _kbdPendingCommand;
        _kbdPendingCommand = -1;
        if (pending >= 0)
        {
            // The parameter byte of 0xED/0xF0/0xF3.
            Push(KbdAck, aux: false);
            if (pending == KbdScancodeSet && value == 0)
            {
                Push(0x02, aux: false); // "get current set": set 2
            }

            return;
        }

        switch (value)
        {
            case KbdSetLeds:
            case KbdScancodeSet:
            case KbdTypematic:
                _kbdPendingCommand = value;
                Push(KbdAck, aux: false);
                break;
            case KbdEcho:
                Push(KbdEcho, aux: false);
                break;
            case KbdIdentify:
                Push(KbdAck, aux: false);
                Push(0xAB, aux: false); // MF2 keyboard ID 0xAB 0x83
                Push(0x83, aux: false);
                break;
            case KbdEnable:
                _kbdScanning = true;
                Push(KbdAck, aux: false);
                break;
            case KbdDisable:
            case KbdDefaults:
                _kbdScanning = value == KbdDefaults;
                Push(KbdAck, aux: false);
                break;
            case KbdReset:
                _kbdScanning = true;
                Push(KbdAck, aux: false);
                Push(KbdBatOk, aux: false);
                break;
            default:
                if (value >= 0xF7)
                {
                    Push(KbdAck, aux: false); // typematic/make-break mode commands: acknowledged, no effect
                }
                else
                {
                    Push(KbdResend, aux: false);
                }

                break;
        }
    }

    private void Push(byte value, bool aux)
    {
        if (_output.Count < MaxOutput)
        {
            _output.Enqueue((ushort)(value | (aux ? AuxFlag : 0)));
        }
    }

    private void LowerIrqs()
    {
        if (_kbdIrqLevel)
        {
            _kbdIrqLevel = false;
            _kbdIrq.SetLevel(false);
        }

        if (_auxIrqLevel)
        {
            _auxIrqLevel = false;
            _auxIrq.SetLevel(false);
        }
    }

    private void UpdateIrqs()
    {
        bool kbd = false, aux = false;
        if (_output.TryPeek(out ushort head))
        {
            if ((head & AuxFlag) != 0)
            {
                aux = (_ctr & CtrAuxInt) != 0;
            }
            else
            {
                kbd = (_ctr & CtrKbdInt) != 0;
            }
        }

        if (kbd != _kbdIrqLevel)
        {
            _kbdIrqLevel = kbd;
            _kbdIrq.SetLevel(kbd);
        }

        if (aux != _auxIrqLevel)
        {
            _auxIrqLevel = aux;
            _auxIrq.SetLevel(aux);
        }
    }

    private sealed class Port(I8042 owner, bool isCommand) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data)
        {
            data.Clear();
            if (data.Length > 0)
            {
                data[0] = isCommand ? owner.ReadStatus() : owner.ReadData();
            }
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            if (data.Length == 0)
            {
                return;
            }

            if (isCommand)
            {
                owner.WriteCommand(data[0]);
            }
            else
            {
                owner.WriteData(data[0]);
            }
        }
    }
}
