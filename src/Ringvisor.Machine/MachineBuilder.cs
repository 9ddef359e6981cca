// Builds a VM from a MachineConfig: guest memory, the PC's buses and devices, the engine and its platform, the
// boot loader. Every configuration or image error surfaces here, as an exception with a message a user can act
// on, before any vCPU runs.
//
// Port map (both engines): 0x20/0xA0 PIC, 0x40-0x43 PIT, 0x60/0x64 i8042, 0x61 port B, 0x70-0x71 CMOS RTC,
// 0xF4 isa-debug-exit (optional; with it QEMU's pc-testdev at 0xE0/0xE4/0x2000 and MMIO 0xFF000000), 0x3F8 COM1 (IRQ 4), 0x510-0x511 fw_cfg, 0x4D0-0x4D1 ELCR, 0x600-0x605 ACPI PM1a event/control, 0xCF8-0xCFF PCI configuration
// mechanism #1 with the reset control register at 0xCF9; PCI ECAM and BARs on the MMIO bus (docs/virtio.md). Under kvm the PIC, PIT, IOAPIC and LAPICs
// are KVM's in-kernel ones; under bt they are Devices/Platform models.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Interrupts;
using Ringvisor.Core.Memory;
using Ringvisor.Devices.Legacy;
using Ringvisor.Devices.Platform;
using Ringvisor.Devices.Platform.Timing;
using Ringvisor.Kvm;
using Ringvisor.Devices.Pci;
using Ringvisor.Machine.Boot;

namespace Ringvisor.Machine;

public static class MachineBuilder
{
    /// <summary>Environment variable overriding the KVM device path (tests use it to simulate a host without KVM).</summary>
    public const string KvmDeviceVariable = "RINGVISOR_KVM_DEVICE";

    private const int KeyboardIrq = 1;
    private const int CmosIrq = 8;
    private const int MouseIrq = 12;

    /// <summary>Firmware's ELCR set-up: bit n of <paramref name="irqs"/> makes ISA IRQ n level-triggered on the 8259s.</summary>
    private static void SetLevelTriggered(ICpuEngine engine, IoBus pio, ushort irqs)
    {
        if (engine is KvmEngine kvm)
        {
            // KVM's in-kernel PIC owns ports 0x4D0/0x4D1; the guest's accesses never reach the PIO bus.
            kvm.Vm.SetPicLevelTriggered(irqs);
            return;
        }

        Span<byte> elcr = [(byte)irqs, (byte)(irqs >> 8)];
        pio.Write(Pic8259Pair.ElcrPort, elcr);
    }

    public static BuiltMachine Build(MachineConfig config, Action<ReadOnlySpan<byte>> consoleOutput)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Validate() is { } invalid)
        {
            throw new ArgumentException(invalid);
        }

        EngineKind kind = EngineSelector.Resolve(config.Engine, out string why);
        string kvmDevice = Environment.GetEnvironmentVariable(KvmDeviceVariable) is { Length: > 0 } p ? p : "/dev/kvm";
        if (kind == EngineKind.Kvm)
        {
            // Pre-flight: a host without usable KVM is reported before any image work.
            KvmSystem.Open(kvmDevice).Dispose();
        }

        var memory = GuestMemory.Create(config.MemoryBytes);
        VirtualMachine? vm = null;
        try
        {
            // Load first: a bad image is the most common error, and it must be reported before anything runs.
            BootResult boot = KernelLoader.Load(memory, new KernelLoadOptions(config.KernelPath, config.InitrdPaths, config.CommandLine, config.VcpuCount)
            {
                ReservedRanges = kind == EngineKind.Kvm ? KvmEngine.ReservedGuestPhysicalRanges : [],
            });

            var pio = new IoBus("pio", 0x1_0000);
            var mmio = new IoBus("mmio", ulong.MaxValue);
            vm = new VirtualMachine(memory, pio, mmio);
            var time = new HostTimeSource();
            var timers = new HostDeviceTimerFactory(time);

            ICpuEngine engine;
            Func<string?> stats = () => null;
            if (kind == EngineKind.Kvm)
            {
                var ctx = new EngineContext { Memory = memory, Pio = pio, Mmio = mmio, Control = vm, VcpuCount = config.VcpuCount, Time = time };
                engine = new KvmEngine(ctx, kvmDevice);
            }
            else
            {
                (engine, stats) = BtPlatform.Create(vm, memory, pio, mmio, config, time, timers, consoleOutput);
            }

            IInterruptController irq = engine.Interrupts;
            var uart = new Serial16550(new GsiLine(irq, Serial16550.Com1Irq), new SerialOutputSink(consoleOutput));
            pio.Register(Serial16550.Com1Port, Serial16550.WindowLength, uart, "com1");

            var i8042 = new I8042(vm, new GsiLine(irq, KeyboardIrq), new GsiLine(irq, MouseIrq));
            pio.Register(0x60, 1, i8042.DataPort, "i8042-data");
            pio.Register(0x64, 1, i8042.CommandPort, "i8042-command");

            var rtc = new CmosRtc(new GsiLine(irq, CmosIrq), time, DateTime.UtcNow, timers);
            ulong below4G = Math.Min(config.MemoryBytes, MemoryLayout.PciHoleStart);
            rtc.SetMemorySize(below4G, config.MemoryBytes - below4G);
            pio.Register(CmosRtc.DefaultPort, 2, rtc, "cmos");
            vm.Own(rtc);

            // PCI INTx reaches the IOAPIC (GSIs 16-19, described by the ACPI _PRT) and, through PIRQ routing as SeaBIOS
            // sets it up, ISA IRQs 10/11 for guests that run on the 8259s alone (booted with acpi=off): Linux then takes
            // the IRQ from the interrupt line register, and the ELCR must say those IRQs are level-triggered.
            var pci = new PciBus(pio, mmio, irq, isaIrqs: PciBus.PcIsaIrqs);
            SetLevelTriggered(engine, pio, pci.IsaIrqMask);
            pio.Register(PciConfigMechanism1.BasePort, PciConfigMechanism1.Length, new PciConfigMechanism1(pci, new ResetControl(vm)), "pci-cf8");
            mmio.Register(MemoryLayout.PciEcamBase, MemoryLayout.PciEcamSize, new PciEcam(pci), "pci-ecam");
            var (transports, socketPorts) = PciDevices.Add(vm, pci, memory, config);
            KvmVirtioNotifier? notifier = null;
            if (engine is KvmEngine kvm)
            {
                // Owned after the transports, so it is disposed (eventfds unregistered, thread stopped) before them.
                notifier = new KvmVirtioNotifier(kvm, pci);
                vm.Own(notifier);
                foreach (var t in transports)
                {
                    notifier.Add(t);
                }

                notifier.Start();
            }

            // The FADT's PM1a blocks (written with the ACPI tables for 2+ vCPUs; unused ports otherwise).
            pio.Register(AcpiTables.PmBase, AcpiPmRegisters.WindowLength, new AcpiPmRegisters(vm, Dsdt.SoftOffSleepType), "acpi-pm");

            // QEMU's fw_cfg (traditional interface): test kernels such as kvm-unit-tests read the vCPU count and RAM size.
            pio.Register(FwCfg.DefaultPort, FwCfg.WindowLength, FwCfg.ForPc(config.MemoryBytes, config.VcpuCount), "fw_cfg");

            if (config.DebugExit)
            {
                pio.Register(DebugExit.DefaultPort, 4, new DebugExit(vm), "isa-debug-exit");

                // QEMU's pc-testdev, which test kernels (kvm-unit-tests) use alongside isa-debug-exit.
                var testdev = new PcTestDevice(line => new GsiLine(irq, line));
                pio.Register(PcTestDevice.IoPortBase, PcTestDevice.IoPortLength, testdev.IoPort, "testdev-ioport");
                pio.Register(PcTestDevice.FlushPagePort, PcTestDevice.FlushPageLength, testdev.FlushPage, "testdev-flush-page");
                pio.Register(PcTestDevice.IrqPortBase, PcTestDevice.IrqLineCount, testdev.IrqLines, "testdev-irq");
                mmio.Register(PcTestDevice.IoMemBase, PcTestDevice.IoMemLength, testdev.IoMem, "testdev-iomem");
            }

            vm.AttachEngine(engine, config.VcpuCount, boot.BootCpu);
            return new BuiltMachine(vm, uart, kind, why, boot.Format, stats)
            {
                Pci = pci,
                VirtioDevices = transports,
                VirtioNotifier = notifier,
                SocketConsolePorts = socketPorts,
            };
        }
        catch
        {
            if (vm is not null)
            {
                vm.Dispose();
            }
            else
            {
                memory.Dispose();
            }

            throw;
        }
    }
}
