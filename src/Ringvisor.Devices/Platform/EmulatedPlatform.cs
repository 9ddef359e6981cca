// Everything the bt engine needs that KVM's in-kernel irqchip would otherwise provide, built and wired in one call:
// the APIC bus, one LocalApic per vCPU (APIC ID = vCPU index), the IOAPIC, the 8259 pair (its INT on the BSP's
// LINT0), the PlatformInterruptController routing GSIs and MSIs, and the 8254 PIT on GSI 0.
//
// Use:
//   var platform = EmulatedPlatform.Create(vcpuCount, time);      // host timers by default
//   platform.RegisterOn(pio, mmio);                               // 0x20/0xA0/0x4D0 PIC+ELCR, 0x40 PIT, 0x61, IOAPIC MMIO
//   new EngineContext { ..., PlatformInterrupts = platform.Controller, LocalInterruptControllers = platform.LocalApics, Time = time }
//   devices: new GsiLine(platform.Controller, gsi)
// The LAPIC MMIO page is not registered on the shared bus: the engine routes it to the accessing vCPU's LocalApic.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Interrupts;
using Ringvisor.Devices.Platform.Timing;

namespace Ringvisor.Devices.Platform;

public sealed class EmulatedPlatform : IDisposable
{
    private EmulatedPlatform(ApicBus bus, LocalApic[] lapics, IoApic ioApic, Pic8259Pair pic, PlatformInterruptController controller, Pit8254 pit)
    {
        Bus = bus;
        LocalApics = lapics;
        IoApic = ioApic;
        Pic = pic;
        Controller = controller;
        Pit = pit;
    }

    public ApicBus Bus { get; }

    /// <summary>Indexed by vCPU index; also usable as EngineContext.LocalInterruptControllers.</summary>
    public IReadOnlyList<LocalApic> LocalApics { get; }

    public IoApic IoApic { get; }

    public Pic8259Pair Pic { get; }

    public PlatformInterruptController Controller { get; }

    public Pit8254 Pit { get; }

    /// <param name="vcpuCount">1-255 vCPUs (xAPIC IDs are 8 bits and 0xFF is broadcast).</param>
    /// <param name="time">The guest clock the LAPIC timers and the PIT count against.</param>
    /// <param name="timers">Timer factory; null for host timers (System.Threading.Timer) on <paramref name="time"/>.</param>
    /// <param name="ioApicId">The IOAPIC ID the loader's MP table / MADT announces.</param>
    public static EmulatedPlatform Create(int vcpuCount, ITimeSource time, IDeviceTimerFactory? timers = null, byte ioApicId = 0)
    {
        ArgumentNullException.ThrowIfNull(time);
        if (vcpuCount is < 1 or > 255)
        {
            throw new ArgumentOutOfRangeException(nameof(vcpuCount), vcpuCount, "the xAPIC platform supports 1 to 255 vCPUs");
        }

        timers ??= new HostDeviceTimerFactory(time);
        var bus = new ApicBus();
        var lapics = new LocalApic[vcpuCount];
        for (int i = 0; i < vcpuCount; i++)
        {
            lapics[i] = new LocalApic(i, (byte)i, bus, time, timers);
        }

        var ioApic = new IoApic(bus, ioApicId);
        var pic = new Pic8259Pair();
        var controller = new PlatformInterruptController(pic, ioApic, bus);
        var pit = new Pit8254(time, new GsiLine(controller, 0), timers);
        return new EmulatedPlatform(bus, lapics, ioApic, pic, controller, pit);
    }

    /// <summary>Registers the PIC, ELCR, PIT, port 0x61 and IOAPIC windows.</summary>
    public void RegisterOn(IoBus pio, IoBus mmio)
    {
        ArgumentNullException.ThrowIfNull(pio);
        ArgumentNullException.ThrowIfNull(mmio);
        pio.Register(Pic8259Pair.MasterPort, 2, Pic.MasterPorts, "pic-master");
        pio.Register(Pic8259Pair.SlavePort, 2, Pic.SlavePorts, "pic-slave");
        pio.Register(Pic8259Pair.ElcrPort, 2, Pic.ElcrPorts, "elcr");
        pio.Register(Pit8254.DefaultPort, Pit8254.WindowLength, Pit, "pit");
        pio.Register(Pit8254.PortBAddress, 1, Pit.PortB, "port61");
        mmio.Register(IoApic.DefaultBase, IoApic.WindowLength, IoApic, "ioapic");
    }

    public void Dispose()
    {
        Pit.Dispose();
        foreach (var lapic in LocalApics)
        {
            lapic.Dispose();
        }
    }
}
