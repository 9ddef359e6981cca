// One Intel 8259A programmable interrupt controller (8259A datasheet, Intel order 231468: "Programming the 8259A",
// ICW1-4 and OCW1-3, "Priority modes", "Poll command", "Special mask mode"). Not thread-safe: Pic8259Pair owns the
// lock for both chips. Level/edge per input comes from the ELCR (PIIX/ICH "Edge/Level Control Register").
namespace Ringvisor.Devices.Platform;

internal sealed class Pic8259
{
    // ICW1 (written to offset 0 with bit 4 set).
    private const byte Icw1Ic4 = 0x01;  // ICW4 follows
    private const byte Icw1Single = 0x02; // no ICW3
    private const byte Icw1Select = 0x10;

    // ICW4.
    private const byte Icw4AutoEoi = 0x02;
    private const byte Icw4SpecialFullyNested = 0x10;

    // OCW3 (offset 0, bit 3 set, bit 4 clear).
    private const byte Ocw3Select = 0x08;
    private const byte Ocw3Poll = 0x04;
    private const byte Ocw3ReadRegister = 0x02; // RR: bit 0 (RIS) selects IRR (0) or ISR (1)
    private const byte Ocw3ReadIsr = 0x01;
    private const byte Ocw3SpecialMaskEnable = 0x40; // ESMM: bit 5 (SMM) then sets or clears special mask
    private const byte Ocw3SpecialMask = 0x20;

    private readonly bool _isMaster;
    private readonly byte _elcrWritable;

    // The master's IR2 is driven by the slave's INT output, which stays high while the slave has a request; treating
    // it as level-sensitive means a request still pending after an INTA or EOI is never lost for want of an edge.
    private readonly byte _cascadeLevel;

    public Pic8259(bool isMaster)
    {
        _isMaster = isMaster;

        // PIIX4 ELCR: IRQ 0, 1, 2 (master) and 8, 13 (slave) must stay edge-triggered.
        _elcrWritable = isMaster ? (byte)0xF8 : (byte)0xDE;
        _cascadeLevel = isMaster ? (byte)0x04 : (byte)0;
    }

    public byte Irr { get; private set; }

    public byte Isr { get; private set; }

    public byte Imr { get; private set; }

    public byte Elcr { get; private set; }

    /// <summary>Current input pin levels (for edge detection and level-triggered IRR).</summary>
    public byte LineLevels { get; private set; }

    public byte VectorBase { get; private set; }

    /// <summary>IR number with the highest priority (rotation); 0 after initialisation.</summary>
    public byte PriorityAdd { get; private set; }

    public bool AutoEoi { get; private set; }

    private int _initStep; // 0 = operational, 2/3/4 = expecting ICW2/3/4
    private bool _expectIcw4;
    private bool _singleMode;
    private bool _rotateOnAutoEoi;
    private bool _specialMask;
    private bool _specialFullyNested;
    private bool _readIsr;
    private bool _poll;

    /// <summary>Drives input <paramref name="irq"/> (0-7).</summary>
    public void SetLine(int irq, bool level)
    {
        byte mask = (byte)(1 << irq);
        bool wasHigh = (LineLevels & mask) != 0;
        if (level)
        {
            LineLevels |= mask;
            if ((LevelMask & mask) != 0 || !wasHigh)
            {
                Irr |= mask; // level-sensitive: follows the line; edge: latched on the rising edge
            }
        }
        else
        {
            LineLevels = (byte)(LineLevels & ~mask);
            if ((LevelMask & mask) != 0)
            {
                Irr = (byte)(Irr & ~mask);
            }
        }
    }

    private byte LevelMask => (byte)(Elcr | _cascadeLevel);

    /// <summary>True while the chip's INT output is asserted.</summary>
    public bool InterruptOutput => PendingIrq() >= 0;

    /// <summary>The IR that an INTA would pick now, or -1.</summary>
    public int PendingIrq()
    {
        int pending = HighestPriority((byte)(Irr & ~Imr));
        if (pending < 0)
        {
            return -1;
        }

        // In special mask mode an in-service level that is masked does not inhibit lower ones (8259A "Special Mask
        // Mode"). In special fully nested mode (master) the cascade input may interrupt itself, so its ISR bit does
        // not block it.
        byte inService = Isr;
        if (_specialMask)
        {
            inService = (byte)(inService & ~Imr);
        }

        if (_specialFullyNested && _isMaster)
        {
            inService = (byte)(inService & ~(1 << 2));
        }

        int current = HighestPriority(inService);
        return current < 0 || Priority(pending) < Priority(current) ? pending : -1;
    }

    /// <summary>The INTA cycle for this chip: returns the IR acknowledged, or -1 for a spurious request (IR7 vector, no ISR bit).</summary>
    public int Acknowledge()
    {
        int irq = PendingIrq();
        if (irq < 0)
        {
            return -1;
        }

        byte mask = (byte)(1 << irq);
        if ((LevelMask & mask) == 0)
        {
            Irr = (byte)(Irr & ~mask); // edge requests are consumed; level requests stay while the line is high
        }

        if (AutoEoi)
        {
            if (_rotateOnAutoEoi)
            {
                PriorityAdd = (byte)((irq + 1) & 7);
            }
        }
        else
        {
            Isr |= mask;
        }

        return irq;
    }

    public byte ReadPort(int offset)
    {
        if (offset == 0)
        {
            if (_poll)
            {
                // Poll command: the next read is an INTA without the vector: bit 7 = interrupt, bits 2:0 = IR.
                _poll = false;
                int irq = Acknowledge();
                return irq < 0 ? (byte)0 : (byte)(0x80 | irq);
            }

            return _readIsr ? Isr : Irr;
        }

        return Imr;
    }

    public void WritePort(int offset, byte value)
    {
        if (offset == 0)
        {
            if ((value & Icw1Select) != 0)
            {
                WriteIcw1(value);
            }
            else if ((value & Ocw3Select) != 0)
            {
                WriteOcw3(value);
            }
            else
            {
                WriteOcw2(value);
            }

            return;
        }

        switch (_initStep)
        {
            case 2:
                VectorBase = (byte)(value & 0xF8); // ICW2: T7-T3 in x86 mode
                _initStep = _singleMode ? (_expectIcw4 ? 4 : 0) : 3;
                break;
            case 3:
                _initStep = _expectIcw4 ? 4 : 0; // ICW3: the cascade wiring is fixed (slave on IR2)
                break;
            case 4:
                AutoEoi = (value & Icw4AutoEoi) != 0;
                _specialFullyNested = (value & Icw4SpecialFullyNested) != 0;
                _initStep = 0;
                break;
            default:
                Imr = value; // OCW1
                break;
        }
    }

    public void WriteElcr(byte value)
    {
        Elcr = (byte)(value & _elcrWritable);

        // A line switched to level-sensitive reflects its current level at once.
        Irr = (byte)((Irr & ~Elcr) | (LineLevels & Elcr));
    }

    public Pic8259State Save() => new(
        Irr, Isr, Imr, Elcr, LineLevels, VectorBase, PriorityAdd, _initStep, _expectIcw4, _singleMode, AutoEoi,
        _rotateOnAutoEoi, _specialMask, _specialFullyNested, _readIsr, _poll);

    public void Restore(Pic8259State s)
    {
        Irr = s.Irr;
        Isr = s.Isr;
        Imr = s.Imr;
        Elcr = (byte)(s.Elcr & _elcrWritable);
        LineLevels = s.LineLevels;
        VectorBase = (byte)(s.VectorBase & 0xF8);
        PriorityAdd = (byte)(s.PriorityAdd & 7);
        _initStep = s.InitStep is 2 or 3 or 4 ? s.InitStep : 0;
        _expectIcw4 = s.ExpectIcw4;
        _singleMode = s.SingleMode;
        AutoEoi = s.AutoEoi;
        _rotateOnAutoEoi = s.RotateOnAutoEoi;
        _specialMask = s.SpecialMask;
        _specialFullyNested = s.SpecialFullyNested;
        _readIsr = s.ReadIsr;
        _poll = s.Poll;
    }

    private void WriteIcw1(byte value)
    {
        // ICW1 resets the chip (8259A "Initialization command words"): IMR cleared, IR7 lowest priority, special
        // mask mode off, status read selects IRR, and edge detection restarts (an input already high needs a new
        // rising edge).
        _initStep = 2;
        _expectIcw4 = (value & Icw1Ic4) != 0;
        _singleMode = (value & Icw1Single) != 0;
        Imr = 0;
        Isr = 0;
        Irr = (byte)(LineLevels & LevelMask);
        PriorityAdd = 0;
        AutoEoi = false;
        _rotateOnAutoEoi = false;
        _specialMask = false;
        _specialFullyNested = false;
        _readIsr = false;
        _poll = false;
    }

    private void WriteOcw2(byte value)
    {
        int command = value >> 5; // R, SL, EOI
        int level = value & 7;
        switch (command)
        {
            case 0b001: // non-specific EOI
            case 0b101: // rotate on non-specific EOI
                {
                    int irq = HighestPriority(_specialMask ? (byte)(Isr & ~Imr) : Isr);
                    if (irq >= 0)
                    {
                        Isr = (byte)(Isr & ~(1 << irq));
                        if (command == 0b101)
                        {
                            PriorityAdd = (byte)((irq + 1) & 7);
                        }
                    }

                    break;
                }

            case 0b011: // specific EOI
                Isr = (byte)(Isr & ~(1 << level));
                break;
            case 0b111: // rotate on specific EOI
                Isr = (byte)(Isr & ~(1 << level));
                PriorityAdd = (byte)((level + 1) & 7);
                break;
            case 0b110: // set priority: L becomes the lowest
                PriorityAdd = (byte)((level + 1) & 7);
                break;
            case 0b100: // set rotate in automatic EOI mode
                _rotateOnAutoEoi = true;
                break;
            case 0b000: // clear rotate in automatic EOI mode
                _rotateOnAutoEoi = false;
                break;
            default:
                break; // 0b010: no operation
        }
    }

    private void WriteOcw3(byte value)
    {
        if ((value & Ocw3SpecialMaskEnable) != 0)
        {
            _specialMask = (value & Ocw3SpecialMask) != 0;
        }

        if ((value & Ocw3ReadRegister) != 0)
        {
            _readIsr = (value & Ocw3ReadIsr) != 0;
        }

        _poll = (value & Ocw3Poll) != 0;
    }

    /// <summary>0 = highest priority.</summary>
    private int Priority(int irq) => (irq - PriorityAdd) & 7;

    private int HighestPriority(byte mask)
    {
        if (mask == 0)
        {
            return -1;
        }

        for (int p = 0; p < 8; p++)
        {
            int irq = (p + PriorityAdd) & 7;
            if ((mask & (1 << irq)) != 0)
            {
                return irq;
            }
        }

        return -1;
    }
}
