// National Semiconductor PC16550D UART (datasheet "PC16550D Universal Asynchronous Receiver/Transmitter with FIFOs",
// June 1995, Table II register summary and Table IV interrupt control functions).
//
// Wiring: pio.Register(0x3F8, Serial16550.WindowLength, uart, "com1") with an IInterruptLine for IRQ 4. The line
// follows the UART's interrupt output ANDed with MCR.OUT2, as PC boards gate it.
//
// Transmission is instantaneous: a THR write goes straight to the ISerialOutput (or, in loopback, into the RX
// FIFO), so THR/TSR are empty again at once and the THRE interrupt re-arms after every write. Reception: the
// terminal thread calls EnqueueInput; bytes move into the 16-byte RX FIFO (1 byte when FIFOs are off) as room
// appears, and anything beyond is held back, never dropped, and delivered as the guest reads. There are no
// character times on a virtual line, so the character-timeout interrupt (IIR 0x0C) is reported as soon as the FIFO
// holds data below its trigger level; at or above the trigger level it is "received data available" (IIR 0x04).
using Ringvisor.Core.Bus;
using Ringvisor.Core.Interrupts;

namespace Ringvisor.Devices.Legacy;

public sealed class Serial16550 : IBusDevice
{
    public const int StateVersion = 1;

    /// <summary>Eight byte-wide registers.</summary>
    public const int WindowLength = 8;

    public const ushort Com1Port = 0x3F8;
    public const int Com1Irq = 4;

    private const int FifoSize = 16; // PC16550D: 16-byte transmit and receive FIFOs

    // Register offsets (PC16550D Table II).
    private const int RegData = 0;   // RBR (read) / THR (write) / DLL (DLAB=1)
    private const int RegIer = 1;    // IER / DLM (DLAB=1)
    private const int RegIirFcr = 2; // IIR (read) / FCR (write)
    private const int RegLcr = 3;
    private const int RegMcr = 4;
    private const int RegLsr = 5;
    private const int RegMsr = 6;
    private const int RegScr = 7;

    // IER bits.
    private const byte IerRxData = 0x01;   // ERBFI
    private const byte IerThre = 0x02;     // ETBEI
    private const byte IerLineStatus = 0x04; // ELSI
    private const byte IerModemStatus = 0x08; // EDSSI
    private const byte IerMask = 0x0F;

    // IIR values (Table IV): bit 0 = 1 means no interrupt pending; bits 7:6 = 11 when FIFOs are enabled.
    private const byte IirNone = 0x01;
    private const byte IirLineStatus = 0x06;
    private const byte IirRxData = 0x04;
    private const byte IirTimeout = 0x0C;
    private const byte IirThre = 0x02;
    private const byte IirModemStatus = 0x00;
    private const byte IirFifoEnabled = 0xC0;

    // FCR bits.
    private const byte FcrEnable = 0x01;
    private const byte FcrClearRx = 0x02;
    private const byte FcrClearTx = 0x04;
    private const byte FcrTriggerMask = 0xC0;

    // LCR bit 7: divisor latch access.
    private const byte LcrDlab = 0x80;

    // MCR bits.
    private const byte McrDtr = 0x01;
    private const byte McrRts = 0x02;
    private const byte McrOut1 = 0x04;
    private const byte McrOut2 = 0x08;
    private const byte McrLoop = 0x10;
    private const byte McrMask = 0x1F;

    // LSR bits.
    private const byte LsrDataReady = 0x01;
    private const byte LsrOverrun = 0x02;
    private const byte LsrThre = 0x20;
    private const byte LsrTemt = 0x40;
    private const byte LsrErrorMask = 0x1E; // OE | PE | FE | BI raise the line status interrupt
    private const byte LsrFifoError = 0x80;

    // MSR bits: deltas in 3:0, line states in 7:4.
    private const byte MsrDcts = 0x01;
    private const byte MsrDdsr = 0x02;
    private const byte MsrTeri = 0x04;
    private const byte MsrDdcd = 0x08;
    private const byte MsrCts = 0x10;
    private const byte MsrDsr = 0x20;
    private const byte MsrRi = 0x40;
    private const byte MsrDcd = 0x80;

    private static readonly int[] s_triggerLevels = [1, 4, 8, 14]; // FCR bits 7:6

    private readonly object _gate = new();
    private readonly IInterruptLine _irq;
    private readonly ISerialOutput _output;
    private readonly Queue<byte> _rx = new();
    private readonly Queue<byte> _held = new();
    private ushort _divisor = 12; // 9600 baud at 1.8432 MHz; a common firmware default
    private byte _ier;
    private byte _fcr;
    private byte _lcr = 0x03; // 8N1
    private byte _mcr;
    private byte _lsrErrors;
    private byte _msrDeltas;
    private byte _scr;
    private bool _thrPending;
    private bool _irqLevel;

    public Serial16550(IInterruptLine irq, ISerialOutput output)
    {
        _irq = irq;
        _output = output;
    }

    /// <summary>Bytes accepted from the host but not yet in the RX FIFO.</summary>
    public int HeldInputCount
    {
        get
        {
            lock (_gate)
            {
                return _held.Count;
            }
        }
    }

    /// <summary>From any thread (terminal, pipe reader): queue host input for the guest. Nothing is dropped.</summary>
    public void EnqueueInput(ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            // In loopback the receiver is disconnected from the line (PC16550D MCR bit 4, loop); keep the bytes for later.
            foreach (byte b in data)
            {
                _held.Enqueue(b);
            }

            RefillRx();
            UpdateIrq();
        }
    }

    public void Read(ulong offset, Span<byte> data)
    {
        data.Clear();
        if (data.Length == 0 || offset >= WindowLength)
        {
            return;
        }

        lock (_gate)
        {
            data[0] = ReadRegister((int)offset);
            UpdateIrq();
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
            WriteRegister((int)offset, data[0]);
            UpdateIrq();
        }
    }

    public Serial16550State Save()
    {
        lock (_gate)
        {
            return new Serial16550State(StateVersion, _divisor, _ier, _fcr, _lcr, _mcr, _lsrErrors, _msrDeltas, _scr, _thrPending, [.. _rx], [.. _held]);
        }
    }

    public void Restore(Serial16550State state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Version != StateVersion)
        {
            throw new ArgumentException($"16550 state version {state.Version} is not supported (expected {StateVersion})", nameof(state));
        }

        lock (_gate)
        {
            _divisor = state.Divisor;
            _ier = (byte)(state.Ier & IerMask);
            _fcr = state.Fcr;
            _lcr = state.Lcr;
            _mcr = (byte)(state.Mcr & McrMask);
            _lsrErrors = (byte)(state.LsrErrors & LsrErrorMask);
            _msrDeltas = (byte)(state.MsrDeltas & 0x0F);
            _scr = state.Scr;
            _thrPending = state.ThrInterruptPending;
            _rx.Clear();
            _held.Clear();
            foreach (byte b in state.RxFifo.Take(FifoSize))
            {
                _rx.Enqueue(b);
            }

            foreach (byte b in state.HeldInput)
            {
                _held.Enqueue(b);
            }

            RefillRx();
            UpdateIrq();
        }
    }

    private bool FifoEnabled => (_fcr & FcrEnable) != 0;

    private int RxCapacity => FifoEnabled ? FifoSize : 1;

    private int TriggerLevel => s_triggerLevels[(_fcr & FcrTriggerMask) >> 6];

    private bool Loopback => (_mcr & McrLoop) != 0;

    private byte ReadRegister(int reg)
    {
        bool dlab = (_lcr & LcrDlab) != 0;
        switch (reg)
        {
            case RegData when dlab:
                return (byte)_divisor;
            case RegData:
                {
                    byte b = _rx.TryDequeue(out byte v) ? v : (byte)0;
                    RefillRx();
                    return b;
                }

            case RegIer when dlab:
                return (byte)(_divisor >> 8);
            case RegIer:
                return _ier;
            case RegIirFcr:
                {
                    byte iir = ComputeIir();
                    if (iir == IirThre)
                    {
                        _thrPending = false; // reading IIR when THRE is the source clears it (Table IV)
                    }

                    return (byte)(iir | (FifoEnabled ? IirFifoEnabled : 0));
                }

            case RegLcr:
                return _lcr;
            case RegMcr:
                return _mcr;
            case RegLsr:
                {
                    byte lsr = (byte)(_lsrErrors | LsrThre | LsrTemt);
                    if (_rx.Count > 0)
                    {
                        lsr |= LsrDataReady;
                    }

                    if (FifoEnabled && (_lsrErrors & LsrErrorMask) != 0)
                    {
                        lsr |= LsrFifoError;
                    }

                    _lsrErrors = 0; // error bits clear on read
                    return lsr;
                }

            case RegMsr:
                {
                    byte msr = (byte)(ModemLines() | _msrDeltas);
                    _msrDeltas = 0;
                    return msr;
                }

            default:
                return _scr;
        }
    }

    private void WriteRegister(int reg, byte value)
    {
        bool dlab = (_lcr & LcrDlab) != 0;
        switch (reg)
        {
            case RegData when dlab:
                _divisor = (ushort)((_divisor & 0xFF00) | value);
                break;
            case RegData:
                Transmit(value);
                break;
            case RegIer when dlab:
                _divisor = (ushort)((_divisor & 0x00FF) | (value << 8));
                break;
            case RegIer:
                {
                    byte old = _ier;
                    _ier = (byte)(value & IerMask);
                    if ((_ier & IerThre) != 0 && (old & IerThre) == 0)
                    {
                        _thrPending = true; // THR is always empty here, so enabling ETBEI raises THRE at once
                    }

                    break;
                }

            case RegIirFcr:
                WriteFcr(value);
                break;
            case RegLcr:
                _lcr = value;
                break;
            case RegMcr:
                WriteMcr((byte)(value & McrMask));
                break;
            case RegLsr:
            case RegMsr:
                break; // read-only on the 16550 (factory test use only)
            default:
                _scr = value;
                break;
        }
    }

    private void Transmit(byte value)
    {
        // A THR write clears a pending THRE interrupt; drop the line now so re-raising it below is a new edge.
        _thrPending = false;
        UpdateIrq();
        if (Loopback)
        {
            if (_rx.Count < RxCapacity)
            {
                _rx.Enqueue(value);
            }
            else
            {
                _lsrErrors |= LsrOverrun;
            }
        }
        else
        {
            _output.Write([value]);
        }

        _thrPending = true;
    }

    private void WriteFcr(byte value)
    {
        bool wasEnabled = FifoEnabled;
        _fcr = (byte)(value & ~(FcrClearRx | FcrClearTx));
        if ((value & FcrClearRx) != 0 || wasEnabled != FifoEnabled)
        {
            // Changing FIFO mode resets both FIFOs (PC16550D FCR bit 0). Input still held back survives: it has
            // not reached the UART yet.
            _rx.Clear();
        }

        RefillRx();
    }

    private void WriteMcr(byte value)
    {
        byte oldLines = ModemLines();
        bool leavingLoopback = Loopback && (value & McrLoop) == 0;
        _mcr = value;
        byte newLines = ModemLines();
        byte changed = (byte)(oldLines ^ newLines);
        if ((changed & MsrCts) != 0)
        {
            _msrDeltas |= MsrDcts;
        }

        if ((changed & MsrDsr) != 0)
        {
            _msrDeltas |= MsrDdsr;
        }

        if ((changed & MsrDcd) != 0)
        {
            _msrDeltas |= MsrDdcd;
        }

        if ((oldLines & MsrRi) != 0 && (newLines & MsrRi) == 0)
        {
            _msrDeltas |= MsrTeri; // trailing edge of ring indicator
        }

        if (leavingLoopback)
        {
            RefillRx();
        }
    }

    /// <summary>Modem input lines: looped back from MCR in loopback, otherwise a connected terminal (CTS, DSR, DCD).</summary>
    private byte ModemLines()
    {
        if (!Loopback)
        {
            return MsrCts | MsrDsr | MsrDcd;
        }

        byte lines = 0;
        if ((_mcr & McrRts) != 0)
        {
            lines |= MsrCts;
        }

        if ((_mcr & McrDtr) != 0)
        {
            lines |= MsrDsr;
        }

        if ((_mcr & McrOut1) != 0)
        {
            lines |= MsrRi;
        }

        if ((_mcr & McrOut2) != 0)
        {
            lines |= MsrDcd;
        }

        return lines;
    }

    private void RefillRx()
    {
        if (Loopback)
        {
            return;
        }

        while (_held.Count > 0 && _rx.Count < RxCapacity)
        {
            _rx.Enqueue(_held.Dequeue());
        }
    }

    /// <summary>The highest-priority pending interrupt (PC16550D Table IV): line status, RX data/timeout, THRE, modem status.</summary>
    private byte ComputeIir()
    {
        if ((_ier & IerLineStatus) != 0 && (_lsrErrors & LsrErrorMask) != 0)
        {
            return IirLineStatus;
        }

        if ((_ier & IerRxData) != 0 && _rx.Count > 0)
        {
            return !FifoEnabled || _rx.Count >= TriggerLevel ? IirRxData : IirTimeout;
        }

        if ((_ier & IerThre) != 0 && _thrPending)
        {
            return IirThre;
        }

        if ((_ier & IerModemStatus) != 0 && _msrDeltas != 0)
        {
            return IirModemStatus;
        }

        return IirNone;
    }

    private void UpdateIrq()
    {
        bool level = ComputeIir() != IirNone && (_mcr & McrOut2) != 0;
        if (level != _irqLevel)
        {
            _irqLevel = level;
            _irq.SetLevel(level);
        }
    }
}
