// The PC/AT's cascaded pair of 8259A PICs: master at 0x20/0x21 (IRQ 0-7), slave at 0xA0/0xA1 (IRQ 8-15) on the
// master's IR2, plus the PIIX/ICH edge/level control registers (ELCR) at 0x4D0/0x4D1. Used only by the bt engine
// (KVM brings its own).
//
// Wiring:
//   pio.Register(0x20, 2, pic.MasterPorts, "pic-master");
//   pio.Register(0xA0, 2, pic.SlavePorts, "pic-slave");
//   pio.Register(0x4D0, 2, pic.ElcrPorts, "elcr");
//   pic.ConnectOutput(line) — the master's INT pin (PlatformInterruptController connects it to the BSP's LINT0).
// Devices drive inputs through SetIrq(irq, level) (normally via PlatformInterruptController.SetGsi). The CPU side:
// HasInterrupt is the master's INT pin; Acknowledge() runs the two INTA cycles and returns the vector, with the
// 8259A's spurious IRQ 7 vector when the request went away before the acknowledge (a level-triggered line dropped
// between HasInterrupt and Acknowledge). The master's cascade input follows the slave's INT output as a level, so
// the master never selects IR2 without a slave request: the slave's spurious IRQ 15 vector is handled in
// Acknowledge but cannot arise in this model.
//
// All members are thread-safe (one lock for both chips). The output line is called with that lock held; whatever
// it drives must not call back into the PIC synchronously.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Interrupts;

namespace Ringvisor.Devices.Platform;

public sealed class Pic8259Pair
{
    public const int StateVersion = 1;

    public const ushort MasterPort = 0x20;
    public const ushort SlavePort = 0xA0;
    public const ushort ElcrPort = 0x4D0;

    private const int CascadeIrq = 2; // the slave's INT is wired to the master's IR2 on the PC/AT
    private const int SpuriousIrq = 7; // an INTA with no request returns the IR7 vector (8259A "Interrupt sequence")

    private readonly object _gate = new();
    private readonly Pic8259 _master = new(isMaster: true);
    private readonly Pic8259 _slave = new(isMaster: false);
    private IInterruptLine _output = NullInterruptLine.Instance;
    private bool _outputLevel;

    public Pic8259Pair()
    {
        MasterPorts = new ChipPorts(this, _master);
        SlavePorts = new ChipPorts(this, _slave);
        ElcrPorts = new Elcr(this);
    }

    /// <summary>Two-byte window for 0x20/0x21.</summary>
    public IBusDevice MasterPorts { get; }

    /// <summary>Two-byte window for 0xA0/0xA1.</summary>
    public IBusDevice SlavePorts { get; }

    /// <summary>Two-byte window for 0x4D0/0x4D1.</summary>
    public IBusDevice ElcrPorts { get; }

    /// <summary>The master's INT output is asserted (an INTA would deliver a real vector).</summary>
    public bool HasInterrupt
    {
        get
        {
            lock (_gate)
            {
                return _master.InterruptOutput;
            }
        }
    }

    /// <summary>Connects the master's INT pin; it is driven to its current level at once.</summary>
    public void ConnectOutput(IInterruptLine output)
    {
        ArgumentNullException.ThrowIfNull(output);
        lock (_gate)
        {
            _output = output;
            _outputLevel = _master.InterruptOutput;
            _output.SetLevel(_outputLevel);
        }
    }

    /// <summary>Drives ISA IRQ <paramref name="irq"/> (0-15). IRQ 2 is the cascade input and is ignored; out-of-range IRQs are ignored.</summary>
    public void SetIrq(int irq, bool level)
    {
        if (irq is < 0 or > 15 || irq == CascadeIrq)
        {
            return;
        }

        lock (_gate)
        {
            if (irq < 8)
            {
                _master.SetLine(irq, level);
            }
            else
            {
                _slave.SetLine(irq - 8, level);
            }

            Update();
        }
    }

    /// <summary>The INTA cycles: returns the vector for the highest-priority request (or a spurious vector).</summary>
    public int Acknowledge()
    {
        lock (_gate)
        {
            int vector;
            int irq = _master.Acknowledge();
            if (irq < 0)
            {
                vector = _master.VectorBase + SpuriousIrq;
            }
            else if (irq == CascadeIrq)
            {
                // The master's IR2 stays in service even if the slave then finds no request (spurious IRQ 15):
                // the guest must still EOI the master, as on real hardware.
                int slaveIrq = _slave.Acknowledge();
                vector = _slave.VectorBase + (slaveIrq < 0 ? SpuriousIrq : slaveIrq);
            }
            else
            {
                vector = _master.VectorBase + irq;
            }

            Update();
            return vector;
        }
    }

    public Pic8259PairState Save()
    {
        lock (_gate)
        {
            return new Pic8259PairState(StateVersion, _master.Save(), _slave.Save());
        }
    }

    public void Restore(Pic8259PairState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Version != StateVersion)
        {
            throw new ArgumentException($"PIC state version {state.Version} is not supported (expected {StateVersion})", nameof(state));
        }

        lock (_gate)
        {
            _master.Restore(state.Master);
            _slave.Restore(state.Slave);
            Update();
        }
    }

    private void Update()
    {
        _master.SetLine(CascadeIrq, _slave.InterruptOutput);
        bool level = _master.InterruptOutput;
        if (level != _outputLevel)
        {
            _outputLevel = level;
            _output.SetLevel(level);
        }
    }

    private byte ReadChip(Pic8259 chip, int offset)
    {
        lock (_gate)
        {
            byte v = chip.ReadPort(offset);
            Update(); // a poll read acknowledges
            return v;
        }
    }

    private void WriteChip(Pic8259 chip, int offset, byte value)
    {
        lock (_gate)
        {
            chip.WritePort(offset, value);
            Update();
        }
    }

    private byte ReadElcr(int offset)
    {
        lock (_gate)
        {
            return offset == 0 ? _master.Elcr : _slave.Elcr;
        }
    }

    private void WriteElcr(int offset, byte value)
    {
        lock (_gate)
        {
            (offset == 0 ? _master : _slave).WriteElcr(value);
            Update();
        }
    }

    private sealed class ChipPorts(Pic8259Pair owner, Pic8259 chip) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data)
        {
            data.Clear();
            if (data.Length > 0 && offset < 2)
            {
                data[0] = owner.ReadChip(chip, (int)offset);
            }
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            if (data.Length > 0 && offset < 2)
            {
                owner.WriteChip(chip, (int)offset, data[0]);
            }
        }
    }

    private sealed class Elcr(Pic8259Pair owner) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data)
        {
            data.Clear();
            for (int i = 0; i < data.Length && offset + (ulong)i < 2; i++)
            {
                data[i] = owner.ReadElcr((int)offset + i);
            }
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            for (int i = 0; i < data.Length && offset + (ulong)i < 2; i++)
            {
                owner.WriteElcr((int)offset + i, data[i]);
            }
        }
    }
}
