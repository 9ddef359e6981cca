// Intel 82093AA I/O APIC (datasheet order 290566: §3.0 registers IOREGSEL/IOWIN, IOAPICID, IOAPICVER, IOAPICARB,
// IOREDTBL[0:23]) with the EOI register of later IOAPICs (offset 0x40) as a convenience. Used by the bt engine.
//
// Wiring: var ioapic = new IoApic(bus, id); mmio.Register(IoApic.DefaultBase, IoApic.WindowLength, ioapic, "ioapic").
// PlatformInterruptController drives pins through SetPin; level-triggered entries set Remote IRR when delivered and
// clear it on the EOI broadcast from a LAPIC (ApicBus.BroadcastEoi), re-delivering if the line is still asserted.
// Edge-triggered pins deliver on a rising edge; an edge on a masked pin is lost, as on the 82093AA.
//
// Pin levels are logical (true = asserted). The polarity bit is stored and read back but not applied: devices
// report assertion, not the electrical level, so the MP/ACPI polarity the guest programs is already accounted for.
using Ringvisor.Core.Bus;
using Ringvisor.Devices.Legacy;

namespace Ringvisor.Devices.Platform;

public sealed class IoApic : IBusDevice
{
    public const int StateVersion = 1;

    public const ulong DefaultBase = 0xFEC0_0000;
    public const ulong WindowLength = 0x1000;
    public const int PinCount = 24;

    private const ulong RegSelectOffset = 0x00;
    private const ulong WindowOffset = 0x10;
    private const ulong EoiOffset = 0x40;

    private const uint RegId = 0x00;
    private const uint RegVersion = 0x01;
    private const uint RegArbitration = 0x02;
    private const uint RegRedirectionFirst = 0x10;

    // IOAPICVER: version 0x11, maximum redirection entry 23 in bits 23:16.
    private const uint VersionValue = ((PinCount - 1) << 16) | 0x11;

    // Redirection entry bits (82093AA §3.2.4).
    private const ulong EntryVectorMask = 0xFF;
    private const ulong EntryDestinationLogical = 1UL << 11;
    private const ulong EntryDeliveryStatus = 1UL << 12;
    private const ulong EntryRemoteIrr = 1UL << 14;
    private const ulong EntryLevel = 1UL << 15;
    private const ulong EntryMasked = 1UL << 16;
    private const ulong EntryReadOnly = EntryDeliveryStatus | EntryRemoteIrr;
    private const ulong EntryWritable = 0xFF00_0000_0001_AFFFUL; // vector, mode, dest mode, polarity, trigger, mask, destination

    private readonly object _gate = new();
    private readonly ApicBus _bus;
    private readonly ulong[] _redirection = new ulong[PinCount];
    private uint _select;
    private byte _id;
    private uint _levels;

    /// <param name="bus">The APIC bus the IOAPIC delivers on and receives EOI broadcasts from.</param>
    /// <param name="id">The IOAPIC ID (bits 3:0); use the ID the MP table / MADT written by the loader gives it.</param>
    public IoApic(ApicBus bus, byte id = 0)
    {
        ArgumentNullException.ThrowIfNull(bus);
        _bus = bus;
        _id = (byte)(id & 0xF);
        for (int i = 0; i < PinCount; i++)
        {
            _redirection[i] = EntryMasked;
        }

        bus.Attach(this);
    }

    /// <summary>Drives input pin <paramref name="pin"/> (0-23); other pins are ignored.</summary>
    public void SetPin(int pin, bool level)
    {
        if (pin is < 0 or >= PinCount)
        {
            return;
        }

        lock (_gate)
        {
            uint mask = 1u << pin;
            bool was = (_levels & mask) != 0;
            _levels = level ? _levels | mask : _levels & ~mask;
            ulong entry = _redirection[pin];
            if (!level || (entry & EntryMasked) != 0)
            {
                return;
            }

            if ((entry & EntryLevel) != 0)
            {
                TryDeliverLevel(pin);
            }
            else if (!was)
            {
                Deliver(pin);
            }
        }
    }

    /// <summary>A LAPIC's EOI broadcast (or a write to the EOI register) for <paramref name="vector"/>.</summary>
    public void EndOfInterrupt(byte vector)
    {
        lock (_gate)
        {
            for (int pin = 0; pin < PinCount; pin++)
            {
                ulong entry = _redirection[pin];
                if ((entry & EntryRemoteIrr) != 0 && (byte)(entry & EntryVectorMask) == vector)
                {
                    _redirection[pin] = entry & ~EntryRemoteIrr;
                    TryDeliverLevel(pin);
                }
            }
        }
    }

    public void Read(ulong offset, Span<byte> data)
    {
        uint value = 0;
        lock (_gate)
        {
            ulong reg = offset & ~3UL;
            if (reg == RegSelectOffset)
            {
                value = _select;
            }
            else if (reg == WindowOffset)
            {
                value = ReadIndirect(_select);
            }
        }

        PortValue.Set(data, (ulong)value >> (int)((offset & 3) * 8));
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (data.Length == 0)
        {
            return;
        }

        lock (_gate)
        {
            switch (offset)
            {
                case RegSelectOffset:
                    _select = data[0]; // IOREGSEL bits 7:0
                    break;
                case WindowOffset when data.Length >= 4:
                    WriteIndirect(_select, (uint)PortValue.Get(data[..4]));
                    break;
                case EoiOffset:
                    break; // handled below, outside the switch, to reuse EndOfInterrupt's locking
                default:
                    break; // sub-dword IOWIN writes and other offsets are ignored
            }
        }

        if (offset == EoiOffset)
        {
            EndOfInterrupt(data[0]);
        }
    }

    public IoApicState Save()
    {
        lock (_gate)
        {
            return new IoApicState(StateVersion, _id, _select, [.. _redirection], _levels);
        }
    }

    public void Restore(IoApicState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Version != StateVersion || state.Redirection.Count != PinCount)
        {
            throw new ArgumentException($"IOAPIC state version {state.Version} with {state.Redirection.Count} entries is not supported (expected version {StateVersion}, {PinCount} entries)", nameof(state));
        }

        lock (_gate)
        {
            _id = (byte)(state.Id & 0xF);
            _select = state.RegisterSelect & 0xFF;
            _levels = state.PinLevels & ((1u << PinCount) - 1);
            for (int i = 0; i < PinCount; i++)
            {
                _redirection[i] = state.Redirection[i] & (EntryWritable | EntryRemoteIrr);
            }
        }
    }

    private uint ReadIndirect(uint reg)
    {
        switch (reg)
        {
            case RegId:
            case RegArbitration:
                return (uint)_id << 24;
            case RegVersion:
                return VersionValue;
            case >= RegRedirectionFirst and < RegRedirectionFirst + (2 * PinCount):
                {
                    ulong entry = _redirection[(reg - RegRedirectionFirst) >> 1];
                    return (reg & 1) == 0 ? (uint)entry : (uint)(entry >> 32);
                }

            default:
                return 0;
        }
    }

    private void WriteIndirect(uint reg, uint value)
    {
        switch (reg)
        {
            case RegId:
                _id = (byte)((value >> 24) & 0xF);
                break;
            case >= RegRedirectionFirst and < RegRedirectionFirst + (2 * PinCount):
                {
                    int pin = (int)((reg - RegRedirectionFirst) >> 1);
                    ulong old = _redirection[pin];
                    ulong entry = (reg & 1) == 0
                        ? (old & 0xFFFF_FFFF_0000_0000UL) | value
                        : (old & 0x0000_0000_FFFF_FFFFUL) | ((ulong)value << 32);
                    entry = (entry & EntryWritable) | (old & EntryReadOnly);
                    if ((entry & EntryLevel) == 0)
                    {
                        entry &= ~EntryRemoteIrr; // Remote IRR is undefined for edge entries; keep it clear
                    }

                    _redirection[pin] = entry;

                    // Unmasking a level entry whose line is asserted delivers it now.
                    TryDeliverLevel(pin);
                    break;
                }

            default:
                break; // version, arbitration and unimplemented registers are read-only
        }
    }

    private void TryDeliverLevel(int pin)
    {
        ulong entry = _redirection[pin];
        if ((entry & (EntryLevel | EntryMasked | EntryRemoteIrr)) == EntryLevel && (_levels & (1u << pin)) != 0)
        {
            _redirection[pin] = entry | EntryRemoteIrr;
            Deliver(pin);
        }
    }

    private void Deliver(int pin)
    {
        ulong entry = _redirection[pin];
        var message = new ApicMessage(
            Vector: (byte)(entry & EntryVectorMask),
            Mode: (ApicDeliveryMode)((entry >> 8) & 7),
            Destination: (byte)(entry >> 56),
            Logical: (entry & EntryDestinationLogical) != 0,
            LevelTriggered: (entry & EntryLevel) != 0);

        // Called with our lock held: LAPICs never call back into the IOAPIC while holding their own lock.
        _bus.Deliver(message);
    }
}
