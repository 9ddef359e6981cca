// PCI bus 0: the functions on it, configuration-space dispatch, BAR assignment (firmware's job, done when a device
// is added) and BAR mapping on the PIO/MMIO buses, redone after every configuration write so BARs move at run time
// when the guest reprograms them or toggles the command register's decode bits (PCI 3.0 §6.2.2, §6.2.5).
//
// INTx routing: INTx pin P (1..4) of device D is swizzled to link L = (D + P - 1) mod 4, which drives IOAPIC GSI 16 + L
// (level-triggered; the pins above the ISA IRQs) and, when the bus is given ISA IRQs for the links (as a PIIX's
// PIRQ route control registers do, set by firmware), also that ISA IRQ, so a guest that runs on the 8259s alone
// (no ACPI, no MP table) gets its PCI interrupts too. The interrupt line register then holds the ISA IRQ, as
// firmware leaves it for PIC-mode operating systems. IrqRoutes lists the table for MP/ACPI tables.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Interrupts;

namespace Ringvisor.Devices.Pci;

public sealed class PciBus
{
    /// <summary>Devices per bus (PCI 3.0 §3.2.2.3.2: 5 device-number bits).</summary>
    public const int DevicesPerBus = 32;

    /// <summary>First IOAPIC input used for PCI INTx; GSIs 0..15 are the ISA IRQs.</summary>
    public const int FirstPciGsi = 16;

    /// <summary>Number of distinct PCI interrupt GSIs (one per INTA#..INTD# after the swizzle).</summary>
    public const int PciGsiCount = 4;

    /// <summary>
    /// The ISA IRQs SeaBIOS gives PIRQA..PIRQD on a PIIX (10, 10, 11, 11): free on a PC whose ISA devices use 0, 1,
    /// 3, 4, 8 and 12, and never edge-only ones. The 8259's ELCR must mark them level-triggered (<see cref="IsaIrqMask"/>).
    /// </summary>
    public static readonly IReadOnlyList<int> PcIsaIrqs = [10, 10, 11, 11];

    private readonly int[]? _isaIrqs;

    private readonly object _gate = new();
    private readonly IoBus _pio;
    private readonly IoBus _mmio;
    private readonly IInterruptController _interrupts;
    private readonly IPciFunction?[] _slots = new IPciFunction?[DevicesPerBus];
    private readonly Dictionary<IPciFunction, List<MappedBar>> _mapped = [];
    private readonly Dictionary<int, PciSharedIntxLine> _intxLines = [];
    private long _barConflicts;

    /// <param name="pio">Where I/O BARs are mapped.</param>
    /// <param name="mmio">Where memory BARs are mapped.</param>
    /// <param name="interrupts">Receives INTx (GSIs) and MSI-X messages.</param>
    /// <param name="allocator">BAR placement (firmware's), default the PC windows.</param>
    /// <param name="isaIrqs">
    /// ISA IRQ (0..15) for each of the four links, also driven by INTx; null when PCI interrupts reach only the IOAPIC.
    /// </param>
    /// <exception cref="ArgumentException"><paramref name="isaIrqs"/> does not hold four ISA IRQs.</exception>
    public PciBus(IoBus pio, IoBus mmio, IInterruptController interrupts, PciBarAllocator? allocator = null, IReadOnlyList<int>? isaIrqs = null)
    {
        if (isaIrqs is not null && (isaIrqs.Count != PciGsiCount || isaIrqs.Any(i => i is < 0 or > 15)))
        {
            throw new ArgumentException("the ISA IRQ table needs one IRQ in 0..15 for each of the four PCI interrupt links", nameof(isaIrqs));
        }

        _isaIrqs = isaIrqs?.ToArray();
        _pio = pio;
        _mmio = mmio;
        _interrupts = interrupts;
        Allocator = allocator ?? new PciBarAllocator();
        HostBridge = new PciHostBridge();
        AddDevice(HostBridge, 0);
    }

    public PciHostBridge HostBridge { get; }

    /// <summary>
    /// Raised (under the bus lock, on the configuring vCPU's thread) when a BAR is mapped at a new address or
    /// unmapped (null): the machine re-registers ioeventfds for virtio notify addresses here.
    /// </summary>
    public event Action<IPciFunction, int, ulong?>? BarMappingChanged;

    public PciBarAllocator Allocator { get; }

    /// <summary>Times a BAR could not be mapped because its window overlapped another device (the BAR stays unmapped).</summary>
    public long BarConflicts => Interlocked.Read(ref _barConflicts);

    /// <summary>Bit n set for each ISA IRQ n that PCI INTx drives (for the ELCR: level-triggered); 0 without ISA routing.</summary>
    public ushort IsaIrqMask => _isaIrqs is null ? (ushort)0 : (ushort)_isaIrqs.Aggregate(0, (m, irq) => m | (1 << irq));

    /// <summary>The INTx routes of every device that uses INTx (pin INTA# only: our functions are single-pin).</summary>
    public IReadOnlyList<PciIrqRoute> IrqRoutes
    {
        get
        {
            lock (_gate)
            {
                var routes = new List<PciIrqRoute>();
                for (int d = 0; d < DevicesPerBus; d++)
                {
                    if (_slots[d] is { UsesIntx: true } f)
                    {
                        routes.Add(new PciIrqRoute((byte)d, f.Config.InterruptPin, GsiFor(d, f.Config.InterruptPin))
                        {
                            IsaIrq = IsaIrqFor(d, f.Config.InterruptPin),
                        });
                    }
                }

                return routes;
            }
        }
    }

    /// <summary>All four pins of every slot, for tables that describe the whole bus.</summary>
    public static IEnumerable<PciIrqRoute> AllRoutes()
    {
        for (int d = 0; d < DevicesPerBus; d++)
        {
            for (byte pin = 1; pin <= 4; pin++)
            {
                yield return new PciIrqRoute((byte)d, pin, GsiFor(d, pin));
            }
        }
    }

    /// <summary>The GSI that pin <paramref name="pin"/> (1 = INTA#) of device <paramref name="device"/> is wired to.</summary>
    public static int GsiFor(int device, int pin) => FirstPciGsi + LinkFor(device, pin);

    /// <summary>The interrupt link (0 = PIRQA .. 3 = PIRQD) after the swizzle.</summary>
    public static int LinkFor(int device, int pin) => (device + pin - 1) % PciGsiCount;

    /// <summary>The ISA IRQ the pin also drives, or -1 when this bus routes INTx to the IOAPIC only.</summary>
    public int IsaIrqFor(int device, int pin) => _isaIrqs is null ? -1 : _isaIrqs[LinkFor(device, pin)];

    /// <summary>
    /// Places <paramref name="function"/> at device <paramref name="slot"/> (or the first free one), assigns its BARs,
    /// enables decoding and maps them, and wires its INTx. Returns its address.
    /// </summary>
    /// <exception cref="InvalidOperationException">The slot is taken, the bus is full, or the BAR windows are exhausted.</exception>
    public PciAddress AddDevice(IPciFunction function, int? slot = null)
    {
        ArgumentNullException.ThrowIfNull(function);
        lock (_gate)
        {
            int d = slot ?? Array.FindIndex(_slots, s => s is null);
            if (d is < 0 or >= DevicesPerBus)
            {
                throw new InvalidOperationException($"PCI bus 0 has no free slot for '{function.Name}'");
            }

            if (_slots[d] is { } existing)
            {
                throw new InvalidOperationException($"PCI slot {d} is already used by '{existing.Name}', cannot add '{function.Name}'");
            }

            var address = new PciAddress(0, (byte)d, 0);
            int gsi = function.UsesIntx ? GsiFor(d, function.Config.InterruptPin) : -1;
            IInterruptLine line = NullInterruptLine.Instance;
            if (gsi >= 0)
            {
                int isa = IsaIrqFor(d, function.Config.InterruptPin);
                line = isa < 0 ? SharedLine(gsi).CreateSource() : new BothLines(SharedLine(gsi).CreateSource(), SharedLine(isa).CreateSource());

                // Informational for the guest (PCI 3.0 §6.2.4): the IRQ a PIC-mode OS uses (Linux ignores values
                // of 16 and above there); the low 8 bits of the GSI when there is no ISA route.
                function.Config.InterruptLine = (byte)(isa < 0 ? gsi : isa);
            }

            ushort command = 0;
            foreach (var bar in function.Bars)
            {
                function.Config.SetBarAddress(bar, Allocator.Allocate(bar.Kind, bar.Size));
                command |= bar.IsMemory ? PciConfigSpace.CommandMemoryEnable : PciConfigSpace.CommandIoEnable;
            }

            function.Config.SetU16(PciConfigSpace.CommandOffset, (ushort)(function.Config.Command | command));
            _slots[d] = function;
            _mapped[function] = [];
            function.Attach(new PciFunctionContext(address, line, gsi, _interrupts));
            UpdateMappings(function);
            return address;
        }
    }

    public IPciFunction? GetFunction(PciAddress address)
    {
        if (address.Bus != 0 || address.Function != 0 || address.Device >= DevicesPerBus)
        {
            return null;
        }

        lock (_gate)
        {
            return _slots[address.Device];
        }
    }

    /// <summary>Configuration read; an absent function reads all ones (PCI 3.0 §6.1: master abort).</summary>
    public void ReadConfig(PciAddress address, int offset, Span<byte> data)
    {
        lock (_gate)
        {
            var f = GetFunction(address);
            if (f is null)
            {
                data.Fill(0xFF);
                return;
            }

            f.ReadConfig(offset, data);
        }
    }

    /// <summary>Configuration write; remaps the function's BARs afterwards. Writes to absent functions are dropped.</summary>
    public void WriteConfig(PciAddress address, int offset, ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            var f = GetFunction(address);
            if (f is null)
            {
                return;
            }

            f.WriteConfig(offset, data);
            UpdateMappings(f);
        }
    }

    /// <summary>Re-derives every BAR mapping from configuration space (after restoring saved state).</summary>
    public void RemapAll()
    {
        lock (_gate)
        {
            foreach (var f in _slots)
            {
                if (f is not null)
                {
                    UpdateMappings(f);
                }
            }
        }
    }

    /// <summary>Where BAR <paramref name="barIndex"/> of <paramref name="function"/> is mapped now, or null when it is not.</summary>
    public ulong? GetMappedAddress(IPciFunction function, int barIndex)
    {
        lock (_gate)
        {
            if (_mapped.TryGetValue(function, out var list))
            {
                foreach (var m in list)
                {
                    if (m.Bar.Index == barIndex)
                    {
                        return m.Start;
                    }
                }
            }

            return null;
        }
    }

    private void UpdateMappings(IPciFunction function)
    {
        var list = _mapped[function];
        ushort command = function.Config.Command;
        foreach (var bar in function.Bars)
        {
            var bus = bar.IsMemory ? _mmio : _pio;
            bool decode = (command & (bar.IsMemory ? PciConfigSpace.CommandMemoryEnable : PciConfigSpace.CommandIoEnable)) != 0;
            ulong address = function.Config.GetBarAddress(bar);

            // Address 0 is "unassigned"; a window must fit on the bus without wrapping.
            bool wanted = decode && address != 0 && address < bus.AddressLimit && bar.Size <= bus.AddressLimit - address;
            int i = list.FindIndex(m => m.Bar.Index == bar.Index);
            if (i >= 0 && (!wanted || list[i].Start != address))
            {
                bus.Unregister(list[i].Start, list[i].Window);
                list.RemoveAt(i);
                i = -1;
                if (!wanted)
                {
                    BarMappingChanged?.Invoke(function, bar.Index, null);
                }
            }

            if (wanted && i < 0)
            {
                var window = new BarWindow(bar.Region);
                try
                {
                    bus.Register(address, bar.Size, window, $"{function.Name} BAR{bar.Index}");
                    list.Add(new MappedBar(bar, address, window));
                    BarMappingChanged?.Invoke(function, bar.Index, address);
                }
                catch (ArgumentException)
                {
                    // The guest placed the BAR over another window (or is mid-way through sizing with decode on):
                    // the BAR decodes nothing until it is moved somewhere free.
                    Interlocked.Increment(ref _barConflicts);
                    BarMappingChanged?.Invoke(function, bar.Index, null);
                }
            }
        }
    }

    private PciSharedIntxLine SharedLine(int gsi)
    {
        if (!_intxLines.TryGetValue(gsi, out var shared))
        {
            _intxLines[gsi] = shared = new PciSharedIntxLine(_interrupts, gsi);
        }

        return shared;
    }

    private sealed record MappedBar(PciBar Bar, ulong Start, BarWindow Window);

    /// <summary>One INTx# wire reaching two controller inputs (the IOAPIC pin and the PIRQ-routed ISA IRQ).</summary>
    private sealed class BothLines(IInterruptLine ioApic, IInterruptLine isa) : IInterruptLine
    {
        public void SetLevel(bool asserted)
        {
            ioApic.SetLevel(asserted);
            isa.SetLevel(asserted);
        }
    }

    /// <summary>A distinct object per mapping, so unregistering one mapping can never remove another of the same region.</summary>
    private sealed class BarWindow(IBusDevice region) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data) => region.Read(offset, data);

        public void Write(ulong offset, ReadOnlySpan<byte> data) => region.Write(offset, data);
    }
}
