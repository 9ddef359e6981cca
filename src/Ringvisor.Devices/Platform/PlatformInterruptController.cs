// The bt engine's interrupt routing (Core IInterruptController): ISA IRQs to both the 8259 pair and the IOAPIC, PCI
// GSIs 16-23 to the IOAPIC, MSIs to the local APICs. The ISA-to-IOAPIC mapping is identity except IRQ 0 (the PIT),
// which arrives on IOAPIC pin 2, as the interrupt source override in the MP table/MADT the loader writes says; IRQ 2
// (the PIC cascade) goes to no IOAPIC pin.
//
// Wiring (bt engine):
//   var bus = new ApicBus();
//   var lapics = Enumerable.Range(0, n).Select(i => new LocalApic(i, (byte)i, bus, time, timers)).ToArray();
//   var ioapic = new IoApic(bus); var pic = new Pic8259Pair();
//   var irq = new PlatformInterruptController(pic, ioapic, bus);   // also connects the PIC to the BSP's LINT0
//   EngineContext { PlatformInterrupts = irq, LocalInterruptControllers = lapics }
// and register the PIC, PIT, IOAPIC windows on the buses (see each type's header). Devices get
// new GsiLine(irq, gsi).
using Ringvisor.Core.Interrupts;

namespace Ringvisor.Devices.Platform;

public sealed class PlatformInterruptController : IInterruptController
{
    public const int IsaIrqCount = 16;
    public const int GsiCount = IoApic.PinCount;

    private const int PitIrq = 0;
    private const int PitIoApicPin = 2; // MP spec interrupt source override: ISA IRQ 0 -> IOAPIC INTIN2
    private const int CascadeIrq = 2;

    private readonly Pic8259Pair _pic;
    private readonly IoApic _ioApic;
    private readonly ApicBus _bus;

    public PlatformInterruptController(Pic8259Pair pic, IoApic ioApic, ApicBus bus)
    {
        ArgumentNullException.ThrowIfNull(pic);
        ArgumentNullException.ThrowIfNull(ioApic);
        ArgumentNullException.ThrowIfNull(bus);
        _pic = pic;
        _ioApic = ioApic;
        _bus = bus;
        bus.ConnectPic(pic);
    }

    public Pic8259Pair Pic => _pic;

    public IoApic IoApic => _ioApic;

    public ApicBus Bus => _bus;

    /// <summary>The IOAPIC pin an ISA IRQ or GSI arrives on, or -1 (IRQ 2).</summary>
    public static int IoApicPinFor(int gsi) => gsi switch
    {
        PitIrq => PitIoApicPin,
        CascadeIrq => -1,
        _ => gsi,
    };

    public void SetGsi(int gsi, bool level)
    {
        if (gsi is < 0 or >= GsiCount)
        {
            return; // a misconfigured device line is dropped, not a host fault
        }

        if (gsi < IsaIrqCount)
        {
            _pic.SetIrq(gsi, level);
        }

        int pin = IoApicPinFor(gsi);
        if (pin >= 0)
        {
            _ioApic.SetPin(pin, level);
        }
    }

    public void SignalMsi(ulong address, uint data) => _bus.DeliverMsi(address, data);
}
