// The bt engine's share of the PC: the interrupt controllers and timers KVM would otherwise provide in the kernel
// (8259 pair, 8254 PIT, IOAPIC, one local APIC per vCPU), and the engine itself.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Interrupts;
using Ringvisor.Core.Memory;
using Ringvisor.Devices.Platform;
using Ringvisor.Devices.Platform.Timing;

namespace Ringvisor.Machine;

internal static class BtPlatform
{
    public static (ICpuEngine Engine, Func<string?> Stats) Create(
        VirtualMachine vm, GuestMemory memory, IoBus pio, IoBus mmio, MachineConfig config, ITimeSource time,
        IDeviceTimerFactory timers, Action<ReadOnlySpan<byte>> console)
    {
        var apicBus = new ApicBus();
        var lapics = new LocalApic[config.VcpuCount];
        for (int i = 0; i < lapics.Length; i++)
        {
            lapics[i] = new LocalApic(i, (byte)i, apicBus, time, timers);
            vm.Own(lapics[i]);
        }

        // The IOAPIC's ID follows the processors' APIC IDs, as the MP table the loader writes announces it.
        var ioapic = new IoApic(apicBus, (byte)config.VcpuCount);
        var pic = new Pic8259Pair();
        var irq = new PlatformInterruptController(pic, ioapic, apicBus);
        pio.Register(Pic8259Pair.MasterPort, 2, pic.MasterPorts, "pic-master");
        pio.Register(Pic8259Pair.SlavePort, 2, pic.SlavePorts, "pic-slave");
        pio.Register(Pic8259Pair.ElcrPort, 2, pic.ElcrPorts, "elcr");
        mmio.Register(MemoryLayout.IoApicBase, IoApic.WindowLength, ioapic, "ioapic");

        var pit = new Pit8254(time, new GsiLine(irq, 0), timers);
        pio.Register(Pit8254.DefaultPort, Pit8254.WindowLength, pit, "pit");
        pio.Register(Pit8254.PortBAddress, 1, pit.PortB, "port-b");
        vm.Own(pit);

        var ctx = new EngineContext
        {
            Memory = memory,
            Pio = pio,
            Mmio = mmio,
            Control = vm,
            VcpuCount = config.VcpuCount,
            PlatformInterrupts = irq,
            LocalInterruptControllers = lapics,
            Time = time,
        };
        return BtEngineFactory.Create(ctx, config, console);
    }
}
