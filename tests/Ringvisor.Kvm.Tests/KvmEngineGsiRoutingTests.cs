// KvmEngine's GSI routing (KvmPcGsiRouting via KVM_SET_GSI_ROUTING): GSI 0 (and the in-kernel PIT) reaches IOAPIC
// pin 2 as the MP/ACPI tables say, GSI 2 reaches no IOAPIC pin. The IOAPIC's IRR (KVM_GET_IRQCHIP) shows which pin a
// raised GSI drives while its redirection entry is masked (82093AA: a masked edge input stays pending in IRR).
// Guests are tiny real-mode programs (CPL 0 is emulated on hosts without VT-x, so a few instructions each).
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Vm;
using Ringvisor.Kvm.Native;
using Ringvisor.Kvm.Tests.Support;
using Ringvisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Kvm.Tests;

public class KvmEngineGsiRoutingTests
{
    private const ushort EntryAddress = 0x7C00;
    private const ushort HandlerAddress = 0x7D00;
    private const ushort CapturePort = 0x10;
    private const byte HandlerMark = 0x55;
    private const byte TimerVector = 0x40;
    private const ulong LapicBase = 0xFEE0_0000;
    private const ulong IoApicBase = 0xFEC0_0000;

    // 82093AA datasheet §3.1 / §3.2.4: IOREGSEL at +0x00, IOWIN at +0x10; redirection entry n is registers
    // 0x10 + 2n (low dword: vector, delivery mode, masks) and 0x11 + 2n (high dword: destination).
    private const byte IoRegSel = 0x00;
    private const byte IoWin = 0x10;
    private const uint RedirectionTableBase = 0x10;

    // 8254 datasheet: control word 0x34 = channel 0, low byte then high byte, mode 2 (rate generator), binary.
    // 11932 input clocks of 1.193182 MHz is about 100 Hz.
    private const byte PitControlPort = 0x43;
    private const byte PitChannel0Port = 0x40;
    private const byte PitChannel0Mode2 = 0x34;
    private const ushort PitCount = 11932;

    /// <summary>
    /// Real-mode guest (DS based at the LAPIC, ES at the IOAPIC): masks both 8259s (GSIs 0-15 reach them too, and
    /// the master's output goes to LINT0 as ExtINT), software-enables the LAPIC (SVR bit 8; Intel SDM Vol. 3A §10.9),
    /// programs IOAPIC redirection entry <paramref name="pin"/> to <see cref="TimerVector"/> (fixed, physical to
    /// APIC 0, edge, active high, unmasked), optionally starts PIT channel 0, reports ready on port 0x10 and waits in
    /// HLT with IF = 1. The handler writes 0x55 to port 0x11 and sends a LAPIC EOI.
    /// </summary>
    private static void LoadIoApicGuest(TestVm vm, int pin, bool startPit)
    {
        vm.Load(EntryAddress, GuestAsm.Assemble(16, EntryAddress, a =>
        {
            var idle = a.CreateLabel();
            a.cli();
            a.mov(al, 0xFF);                     // OCW1: mask every input
            a.@out(0x21, al);
            a.@out(0xA1, al);
            a.mov(__dword_ptr[0xF0], 0x1FF);     // SVR: APIC software enable, spurious vector 0xFF
            a.mov(__dword_ptr.es[IoRegSel], RedirectionTableBase + (2 * (uint)pin) + 1);
            a.mov(__dword_ptr.es[IoWin], 0);     // destination APIC ID 0
            a.mov(__dword_ptr.es[IoRegSel], RedirectionTableBase + (2 * (uint)pin));
            a.mov(__dword_ptr.es[IoWin], TimerVector);
            if (startPit)
            {
                a.mov(al, PitChannel0Mode2);
                a.@out(PitControlPort, al);
                a.mov(al, (byte)(PitCount & 0xFF));
                a.@out(PitChannel0Port, al);
                a.mov(al, (byte)(PitCount >> 8));
                a.@out(PitChannel0Port, al);
            }

            a.mov(al, 1);
            a.@out((byte)CapturePort, al);
            a.sti();
            a.Label(ref idle);
            a.hlt();
            a.jmp(idle);
        }));
        vm.Load(HandlerAddress, GuestAsm.Assemble(16, HandlerAddress, a =>
        {
            a.mov(al, HandlerMark);
            a.@out((byte)(CapturePort + 1), al);
            a.mov(__dword_ptr[0xB0], 0);         // LAPIC EOI register
            a.iret();
        }));
        // Real-mode IVT entry (offset, segment) at vector * 4.
        Assert.True(vm.Memory.TryWrite((ulong)TimerVector * 4, (uint)HandlerAddress));
    }

    private static (PortCaptureDevice Capture, VcpuDriver Driver) Start(TestVm vm)
    {
        var capture = new PortCaptureDevice();
        vm.Pio.Register(CapturePort, 2, capture, "capture");
        var vcpu = vm.CreateVcpu(0);
        var s = new CpuState();
        s.System.Cs = SegmentRegister.RealMode(0, code: true);
        s.System.Ds.Base = LapicBase;
        s.System.Es.Base = IoApicBase;
        s.Registers.Rip = EntryAddress;
        s.Registers.Rsp = 0x7000;
        vcpu.SetState(s);
        var driver = new VcpuDriver(vcpu, vm.Control);
        Assert.True(capture.WaitForWrites(1, VcpuDriver.HangGuard), "the guest never reported ready");
        return (capture, driver);
    }

    /// <summary>Waits for <paramref name="handlerRuns"/> handler writes after the ready write, then stops the VM.</summary>
    private static void AssertHandlerRan(TestVm vm, PortCaptureDevice capture, VcpuDriver driver, int handlerRuns)
    {
        bool delivered = capture.WaitForWrites(1 + handlerRuns, VcpuDriver.HangGuard);
        vm.Control.RequestStop(VmStopReason.UserQuit, 0);
        driver.Finish();

        Assert.True(delivered, $"the interrupt handler ran {capture.Writes.Count - 1} time(s), expected {handlerRuns}");
        Assert.All(capture.Writes.Skip(1), w => Assert.Equal((1UL, (ulong)HandlerMark, 1), w));
    }

    [KvmFact]
    public void SetGsi_PulseOnGsi0WithIoApicPin2Programmed_GuestHandlerRuns()
    {
        using var vm = new TestVm();
        LoadIoApicGuest(vm, KvmPcGsiRouting.TimerIoApicPin, startPit: false);
        var (capture, driver) = Start(vm);

        vm.Engine.Interrupts.SetGsi(KvmPcGsiRouting.TimerGsi, true);
        vm.Engine.Interrupts.SetGsi(KvmPcGsiRouting.TimerGsi, false);

        AssertHandlerRan(vm, capture, driver, handlerRuns: 1);
    }

    [KvmFact]
    public void InKernelPit_Channel0RateGenerator_TicksRepeatedlyOnIoApicPin2()
    {
        // More than one tick: in reinject mode the PIT waits for the guest's EOI of GSI 0 before the next one, and
        // KVM finds that GSI from the EOI'd pin through the same routing table.
        using var vm = new TestVm();
        LoadIoApicGuest(vm, KvmPcGsiRouting.TimerIoApicPin, startPit: true);
        var (capture, driver) = Start(vm);

        AssertHandlerRan(vm, capture, driver, handlerRuns: 3);
    }

    [KvmFact]
    public void SetGsi_EachRoutedGsiRaisedWhileMasked_LatchesOnlyItsIoApicPin()
    {
        using var vm = new TestVm();
        var chip = vm.Engine.Interrupts;
        Assert.Equal(0u, vm.Engine.Vm.GetIoApicIrr());

        for (int gsi = 0; gsi < KvmIrqChip.GsiCount; gsi++)
        {
            chip.SetGsi(gsi, true);
            uint raised = vm.Engine.Vm.GetIoApicIrr();
            chip.SetGsi(gsi, false);
            uint lowered = vm.Engine.Vm.GetIoApicIrr();

            uint expected = KvmPcGsiRouting.IoApicPinOf(gsi) is int pin ? 1u << pin : 0;
            Assert.True(expected == raised, $"GSI {gsi}: IOAPIC IRR {raised:X6}, expected {expected:X6}");
            Assert.Equal(0u, lowered);
        }
    }

    [KvmFact]
    public void SetGsi_CascadeGsi2_DoesNotReachIoApicPin2()
    {
        using var vm = new TestVm();

        vm.Engine.Interrupts.SetGsi(KvmPcGsiRouting.CascadeGsi, true);

        Assert.Equal(0u, vm.Engine.Vm.GetIoApicIrr() & (1u << KvmPcGsiRouting.TimerIoApicPin));
        vm.Engine.Interrupts.SetGsi(KvmPcGsiRouting.CascadeGsi, false);
    }

    [KvmFact]
    public void CreateIrqChip_KernelDefaultRouting_SendsGsi0ToPin0()
    {
        // Why the engine reprograms the table: without it, the PIT's GSI 0 lands on pin 0, not the promised pin 2.
        using var kvm = KvmSystem.Open();
        using var vm = kvm.CreateVm();
        vm.CreateIrqChip();

        Assert.Equal(0, vm.SetIrqLine(0, true));
        uint irr = vm.GetIoApicIrr();

        Assert.Equal(1u << 0, irr);
    }

    [KvmFact]
    public void SetGsiRouting_PinBeyondController_ThrowsArgumentException()
    {
        using var vm = new TestVm();

        Assert.Throws<ArgumentException>(() => vm.Engine.Vm.SetGsiRouting([new KvmGsiRoute(0, KvmIrqchipId.PicMaster, 8)]));
        Assert.Throws<ArgumentException>(() => vm.Engine.Vm.SetGsiRouting([new KvmGsiRoute(0, KvmIrqchipId.IoApic, 24)]));
    }
}
