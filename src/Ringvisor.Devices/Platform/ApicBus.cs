// The system bus between local APICs and the IOAPIC: routes IPIs, IOAPIC redirections and MSIs to the LAPICs they
// address (Intel SDM Vol. 3A §10.6.2 "Determining IPI Destination", §10.6.2.4 lowest priority), and carries EOI
// broadcasts from LAPICs back to the IOAPIC (§10.8.5).
//
// Wiring (bt engine): create the bus, then one LocalApic per vCPU (they attach themselves), the IoApic
// (attaches itself), the Pic8259Pair, and finally PlatformInterruptController, which connects the PIC's INT pin to
// the LINT0 of the LAPIC with index 0 (the BSP).
using Ringvisor.Core.Interrupts;

namespace Ringvisor.Devices.Platform;

public sealed class ApicBus
{
    private const byte BroadcastDestination = 0xFF;

    private readonly object _gate = new();
    private volatile LocalApic[] _lapics = [];
    private IoApic? _ioApic;
    private long _undelivered;

    /// <summary>The LAPICs in vCPU index order.</summary>
    public IReadOnlyList<LocalApic> LocalApics => _lapics;

    /// <summary>Messages that addressed no LAPIC (dropped, as on real hardware); for diagnostics.</summary>
    public long UndeliveredMessages => Interlocked.Read(ref _undelivered);

    /// <summary>Delivers a message from the IOAPIC, an MSI or a test. <paramref name="source"/> is the sending LAPIC for IPIs, else null.</summary>
    public void Deliver(in ApicMessage message, LocalApic? source = null)
    {
        var lapics = _lapics;
        Span<bool> targets = lapics.Length <= 256 ? stackalloc bool[lapics.Length] : new bool[lapics.Length];
        int count = 0;
        for (int i = 0; i < lapics.Length; i++)
        {
            bool hit = message.Shorthand switch
            {
                ApicShorthand.Self => ReferenceEquals(lapics[i], source),
                ApicShorthand.AllIncludingSelf => true,
                ApicShorthand.AllExcludingSelf => !ReferenceEquals(lapics[i], source),
                _ => Matches(lapics[i], message.Destination, message.Logical),
            };
            targets[i] = hit;
            if (hit)
            {
                count++;
            }
        }

        if (count == 0)
        {
            Interlocked.Increment(ref _undelivered);
            return;
        }

        if (message.Mode == ApicDeliveryMode.LowestPriority)
        {
            // Lowest-priority arbitration: the target with the lowest task priority wins; ties go to the lowest
            // index (the SDM leaves the tie-break to the platform).
            int best = -1;
            int bestPriority = int.MaxValue;
            for (int i = 0; i < lapics.Length; i++)
            {
                if (targets[i] && lapics[i].ArbitrationPriority < bestPriority)
                {
                    best = i;
                    bestPriority = lapics[i].ArbitrationPriority;
                }
            }

            lapics[best].Accept(message);
            return;
        }

        for (int i = 0; i < lapics.Length; i++)
        {
            if (targets[i])
            {
                lapics[i].Accept(message);
            }
        }
    }

    /// <summary>
    /// Decodes a message-signalled interrupt (Intel SDM Vol. 3A §10.11.1 address, §10.11.2 data) and delivers it.
    /// Returns false, delivering nothing, when the address is not in the 0xFEExxxxx interrupt window.
    /// </summary>
    public bool DeliverMsi(ulong address, uint data)
    {
        if (!TryDecodeMsi(address, data, out var message))
        {
            Interlocked.Increment(ref _undelivered);
            return false;
        }

        Deliver(message);
        return true;
    }

    /// <summary>The MSI address/data format: address bits 31:20 = 0xFEE, 19:12 destination ID, 3 redirection hint, 2 destination mode; data bits 7:0 vector, 10:8 delivery mode, 14 level, 15 trigger mode.</summary>
    public static bool TryDecodeMsi(ulong address, uint data, out ApicMessage message)
    {
        const ulong MsiWindowMask = 0xFFFF_FFFF_FFF0_0000;
        const ulong MsiWindow = 0xFEE0_0000;
        const int DestinationShift = 12;
        const ulong RedirectionHint = 1 << 3;
        const ulong DestinationModeLogical = 1 << 2;
        const uint DataLevelAssert = 1 << 14;
        const uint DataTriggerLevel = 1 << 15;

        if ((address & MsiWindowMask) != MsiWindow)
        {
            message = default;
            return false;
        }

        var mode = (ApicDeliveryMode)((data >> 8) & 7);

        // With RH = 1 the message goes to one of the addressed processors, as lowest priority would.
        if ((address & RedirectionHint) != 0 && mode == ApicDeliveryMode.Fixed)
        {
            mode = ApicDeliveryMode.LowestPriority;
        }

        message = new ApicMessage(
            Vector: (byte)data,
            Mode: mode,
            Destination: (byte)(address >> DestinationShift),
            Logical: (address & DestinationModeLogical) != 0,
            LevelTriggered: (data & DataTriggerLevel) != 0,
            Assert: (data & DataTriggerLevel) == 0 || (data & DataLevelAssert) != 0);
        return true;
    }

    /// <summary>A LAPIC handled an EOI for a level-triggered vector: tell the IOAPIC (§10.8.5).</summary>
    public void BroadcastEoi(byte vector) => _ioApic?.EndOfInterrupt(vector);

    /// <summary>The LAPIC with vCPU index <paramref name="index"/>, or null.</summary>
    public LocalApic? ByIndex(int index)
    {
        var lapics = _lapics;
        return index >= 0 && index < lapics.Length ? lapics[index] : null;
    }

    /// <summary>Connects the PIC's INT output to LINT0 of the BSP (index 0), as the PC wires virtual-wire mode.</summary>
    public void ConnectPic(Pic8259Pair pic)
    {
        ArgumentNullException.ThrowIfNull(pic);
        var bsp = ByIndex(0) ?? throw new InvalidOperationException("create the local APICs before connecting the PIC");
        bsp.ConnectPic(pic);
        pic.ConnectOutput(new Lint0Line(bsp));
    }

    internal void Attach(LocalApic lapic)
    {
        lock (_gate)
        {
            if (lapic.Index != _lapics.Length)
            {
                throw new InvalidOperationException($"local APICs must be created in vCPU index order (expected {_lapics.Length}, got {lapic.Index})");
            }

            _lapics = [.. _lapics, lapic];
        }
    }

    internal void Attach(IoApic ioApic)
    {
        lock (_gate)
        {
            if (_ioApic is not null)
            {
                throw new InvalidOperationException("this APIC bus already has an IOAPIC");
            }

            _ioApic = ioApic;
        }
    }

    private static bool Matches(LocalApic lapic, byte destination, bool logical)
    {
        if (destination == BroadcastDestination)
        {
            return true;
        }

        if (!logical)
        {
            return lapic.Id == destination;
        }

        // Logical destination (§10.6.2.2): flat model matches any common bit; cluster model matches the cluster
        // (high nibble) and any common bit of the low nibble.
        byte ldr = lapic.LogicalId;
        if (lapic.FlatModel)
        {
            return (ldr & destination) != 0;
        }

        return (ldr >> 4) == (destination >> 4) && (ldr & destination & 0x0F) != 0;
    }

    private sealed class Lint0Line(LocalApic lapic) : IInterruptLine
    {
        public void SetLevel(bool asserted) => lapic.SetLint0(asserted);
    }
}
