// Base class for a PCI function: configuration space, BAR declarations, INTx# with the command register's
// interrupt-disable bit and the status register's interrupt bit (PCI Local Bus 3.0 §6.2.2/§6.2.3), optional MSI-X.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Interrupts;

namespace Ringvisor.Devices.Pci;

public abstract class PciFunction : IPciFunction
{
    /// <summary>Interrupt pin value for INTA# (§6.2.4).</summary>
    private const byte InterruptPinIntA = 1;

    private readonly List<PciBar> _bars = [];
    private readonly object _intxGate = new();
    private PciFunctionContext? _context;
    private bool _intxLevel;
    private bool _intxDriven;

    protected PciFunction(string name, ushort vendorId, ushort deviceId, uint classCode, byte revision = 0,
                          ushort subsystemVendorId = 0, ushort subsystemId = 0, bool usesIntx = true)
    {
        Name = name;
        Config = new PciConfigSpace(vendorId, deviceId, classCode, revision, subsystemVendorId, subsystemId);
        UsesIntx = usesIntx;
        if (usesIntx)
        {
            Config.InterruptPin = InterruptPinIntA;
        }
    }

    public string Name { get; }

    public PciConfigSpace Config { get; }

    public IReadOnlyList<PciBar> Bars => _bars;

    public bool UsesIntx { get; }

    /// <summary>Null until the function is on a bus.</summary>
    public PciFunctionContext? Context => _context;

    /// <summary>The MSI-X capability, when the function declared one.</summary>
    public MsixCapability? Msix { get; private set; }

    public virtual void Attach(PciFunctionContext context)
    {
        if (_context is not null)
        {
            throw new InvalidOperationException($"PCI function '{Name}' is already on a bus at {_context.Address}");
        }

        _context = context;
        Msix?.Attach(context.Interrupts);
    }

    public void ReadConfig(int offset, Span<byte> data)
    {
        OnConfigReading(offset, data.Length);
        Config.Read(offset, data);
    }

    public void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
        Config.Write(offset, data);
        if (offset <= PciConfigSpace.CommandOffset + 1 && offset + data.Length > PciConfigSpace.CommandOffset)
        {
            // The interrupt-disable bit gates the INTx# wire without changing the interrupt status bit.
            UpdateIntxWire();
        }

        Msix?.OnConfigWritten(offset, data.Length);
        OnConfigWritten(offset, data.Length);
    }

    /// <summary>The address BAR <paramref name="index"/> holds now, or null when the BAR is not implemented.</summary>
    public ulong? GetBarAddress(int index)
    {
        foreach (var b in _bars)
        {
            if (b.Index == index)
            {
                return Config.GetBarAddress(b);
            }
        }

        return null;
    }

    /// <summary>Asserts or deasserts this function's INTx# (level-triggered, shared).</summary>
    public void SetIntx(bool asserted)
    {
        if (!UsesIntx)
        {
            return;
        }

        lock (_intxGate)
        {
            _intxLevel = asserted;
            Config.SetInterruptStatus(asserted);
            UpdateIntxWire();
        }
    }

    /// <summary>Configuration space, INTx level and MSI-X table (version 1). Take while the VM is paused.</summary>
    public PciFunctionState SavePciState()
    {
        lock (_intxGate)
        {
            return new PciFunctionState(PciFunctionState.CurrentVersion, Config.Snapshot(), _intxLevel, Msix?.Save());
        }
    }

    /// <summary>Restores <see cref="SavePciState"/>; the machine then calls <see cref="PciBus.RemapAll"/>.</summary>
    /// <exception cref="ArgumentException">Wrong version or shape.</exception>
    public void RestorePciState(PciFunctionState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Version != PciFunctionState.CurrentVersion)
        {
            throw new ArgumentException($"PCI function '{Name}': state version {state.Version} is not supported (expected {PciFunctionState.CurrentVersion})");
        }

        if (state.ConfigSpace.Length != PciConfigSpace.Size ||
            BitConverter.ToUInt32(state.ConfigSpace, PciConfigSpace.VendorIdOffset) != Config.ReadU32(PciConfigSpace.VendorIdOffset))
        {
            throw new ArgumentException($"PCI function '{Name}': saved state belongs to a different device (vendor/device ID differ)");
        }

        if ((state.Msix is null) != (Msix is null))
        {
            throw new ArgumentException($"PCI function '{Name}': saved state {(state.Msix is null ? "lacks" : "has")} MSI-X, this function {(Msix is null ? "does not" : "does")}");
        }

        lock (_intxGate)
        {
            Config.Load(state.ConfigSpace);
            if (state.Msix is not null)
            {
                Msix!.Restore(state.Msix);
            }

            _intxLevel = state.IntxLevel;
            Config.SetInterruptStatus(_intxLevel);
            UpdateIntxWire();
        }
    }

    /// <summary>Hook for device-specific configuration registers (capabilities), after a guest write.</summary>
    protected virtual void OnConfigWritten(int offset, int length)
    {
    }

    /// <summary>Hook before a guest read, for registers whose value is computed on access.</summary>
    protected virtual void OnConfigReading(int offset, int length)
    {
    }

    /// <exception cref="ArgumentException">The index, size or kind is invalid, or the slot is taken.</exception>
    protected PciBar DefineBar(int index, PciBarKind kind, ulong size, IBusDevice region, bool prefetchable = false)
    {
        int lastIndex = kind == PciBarKind.Memory64 ? index + 1 : index;
        if (index < 0 || lastIndex > 5)
        {
            throw new ArgumentException($"PCI function '{Name}': BAR {index} of kind {kind} does not fit in BAR0..5");
        }

        // §6.2.5.1: memory BARs decode at least 16 bytes (we use a page so the bus can map them), I/O at least 4.
        ulong min = kind == PciBarKind.Io ? 4UL : 16UL;
        if (size < min || (size & (size - 1)) != 0 || (kind == PciBarKind.Io && size > 256) ||
            (kind == PciBarKind.Memory32 && size > 0x8000_0000))
        {
            throw new ArgumentException($"PCI function '{Name}': BAR {index} size 0x{size:X} is not a valid power of two for {kind}");
        }

        foreach (var b in _bars)
        {
            int bLast = b.Kind == PciBarKind.Memory64 ? b.Index + 1 : b.Index;
            if (index <= bLast && b.Index <= lastIndex)
            {
                throw new ArgumentException($"PCI function '{Name}': BAR {index} overlaps BAR {b.Index}");
            }
        }

        var bar = new PciBar(index, kind, size, region, prefetchable);
        _bars.Add(bar);
        Config.DefineBar(bar);
        return bar;
    }

    /// <summary>Adds an MSI-X capability whose table and PBA live in BAR <paramref name="barIndex"/>; the caller maps <see cref="MsixCapability"/> there.</summary>
    protected MsixCapability AddMsix(int vectorCount, int barIndex, uint tableOffset, uint pbaOffset)
    {
        if (Msix is not null)
        {
            throw new InvalidOperationException($"PCI function '{Name}' already has an MSI-X capability");
        }

        Msix = new MsixCapability(Config, vectorCount, barIndex, tableOffset, pbaOffset);
        return Msix;
    }

    private void UpdateIntxWire()
    {
        if (_context is null)
        {
            return;
        }

        lock (_intxGate)
        {
            bool drive = _intxLevel && (Config.Command & PciConfigSpace.CommandInterruptDisable) == 0;
            if (drive != _intxDriven)
            {
                _intxDriven = drive;
                _context.Intx.SetLevel(drive);
            }
        }
    }
}
