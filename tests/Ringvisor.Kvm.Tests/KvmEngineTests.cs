// KvmEngine: VM set-up, the in-kernel irqchip as IInterruptController (KVM_IRQ_LINE through the PIC, KVM_SIGNAL_MSI
// through the LAPIC), irqfd and ioeventfd. Guests are tiny real-mode programs (CPL 0, so kept to a few instructions).
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Vm;
using Ringvisor.Kvm.Tests.Support;
using Ringvisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Kvm.Tests;

public class KvmEngineTests
{
    private const ushort EntryAddress = 0x7C00;
    private const ushort HandlerAddress = 0x7D00;
    private const ushort CapturePort = 0x10;
    private const byte HandlerMark = 0x55;
    private const int IsaGsi = 5;
    private const byte PicVectorBase = 0x20;
    private const byte MsiVector = 0x30;
    private const ulong LapicBase = 0xFEE0_0000;

    /// <summary>
    /// Real-mode guest: sets up the PIC (ICW1-4, IRQ 5 unmasked; 8259A datasheet) or software-enables the LAPIC
    /// (SVR bit 8; Intel SDM Vol. 3A §10.9), reports ready on port 0x10, then waits in HLT with IF = 1. The handler
    /// writes 0x55 to port 0x11 and sends EOI. With the LAPIC, DS has base 0xFEE00000 so [0xF0] is the SVR.
    /// </summary>
    private static void LoadInterruptGuest(TestVm vm, bool viaPic, byte vector)
    {
        vm.Load(EntryAddress, GuestAsm.Assemble(16, EntryAddress, a =>
        {
            var idle = a.CreateLabel();
            a.cli();
            if (viaPic)
            {
                a.mov(al, 0x11);                 // ICW1: edge, cascade, ICW4 follows
                a.@out(0x20, al);
                a.mov(al, PicVectorBase);        // ICW2: vector base
                a.@out(0x21, al);
                a.mov(al, 0x04);                 // ICW3: slave on IRQ 2
                a.@out(0x21, al);
                a.mov(al, 0x01);                 // ICW4: 8086 mode
                a.@out(0x21, al);
                a.mov(al, unchecked((byte)~(1 << IsaGsi))); // OCW1: unmask IRQ 5 only
                a.@out(0x21, al);
            }
            else
            {
                a.mov(__dword_ptr[0xF0], 0x1FF); // SVR: APIC software enable, spurious vector 0xFF
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
            if (viaPic)
            {
                a.mov(al, 0x20);                 // OCW2: non-specific EOI
                a.@out(0x20, al);
            }
            else
            {
                a.mov(__dword_ptr[0xB0], 0);     // LAPIC EOI register
            }

            a.iret();
        }));
        // Real-mode IVT entry (offset, segment) at vector * 4.
        Assert.True(vm.Memory.TryWrite((ulong)vector * 4, (uint)HandlerAddress));
    }

    private static (KvmVcpu Vcpu, PortCaptureDevice Capture, VcpuDriver Driver) Start(TestVm vm, bool lapicDataSegment)
    {
        var capture = new PortCaptureDevice();
        vm.Pio.Register(CapturePort, 2, capture, "capture");
        var vcpu = vm.CreateVcpu(0);
        var s = new CpuState();
        s.System.Cs = SegmentRegister.RealMode(0, code: true);
        if (lapicDataSegment)
        {
            s.System.Ds.Base = LapicBase;
        }

        s.Registers.Rip = EntryAddress;
        s.Registers.Rsp = 0x7000;
        vcpu.SetState(s);
        var driver = new VcpuDriver(vcpu, vm.Control);
        Assert.True(capture.WaitForWrites(1, VcpuDriver.HangGuard), "the guest never reported ready");
        return (vcpu, capture, driver);
    }

    private static void AssertHandlerRan(TestVm vm, PortCaptureDevice capture, VcpuDriver driver)
    {
        bool delivered = capture.WaitForWrites(2, VcpuDriver.HangGuard);
        vm.Control.RequestStop(VmStopReason.UserQuit, 0);
        driver.Finish();

        Assert.True(delivered, "the interrupt handler never ran");
        Assert.Equal((1UL, (ulong)HandlerMark, 1), capture.Writes[1]);
    }

    [KvmFact]
    public void Engine_Properties_DescribeKvmWithInKernelControllers()
    {
        using var vm = new TestVm();

        Assert.Equal("kvm", vm.Engine.Name);
        Assert.True(vm.Engine.ProvidesInterruptControllers);
        Assert.IsType<KvmIrqChip>(vm.Engine.Interrupts);
    }

    [KvmFact]
    public void CreateVcpu_SameIndexTwice_Throws()
    {
        using var vm = new TestVm();
        _ = vm.CreateVcpu(0);

        Assert.Throws<InvalidOperationException>(() => vm.Engine.CreateVcpu(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => vm.Engine.CreateVcpu(1));
    }

    [KvmFact]
    public void SetGsi_PulseOnIsaIrqWithPicProgrammed_GuestHandlerRuns()
    {
        using var vm = new TestVm();
        LoadInterruptGuest(vm, viaPic: true, PicVectorBase + IsaGsi);
        var (_, capture, driver) = Start(vm, lapicDataSegment: false);

        vm.Engine.Interrupts.SetGsi(IsaGsi, true);
        vm.Engine.Interrupts.SetGsi(IsaGsi, false);

        AssertHandlerRan(vm, capture, driver);
    }

    [KvmFact]
    public void RegisterIrqfd_EventFdSignalled_GuestHandlerRuns()
    {
        using var vm = new TestVm();
        using var irq = new EventFd();
        LoadInterruptGuest(vm, viaPic: true, PicVectorBase + IsaGsi);
        vm.Engine.RegisterIrqfd(irq.Fd, IsaGsi);
        var (_, capture, driver) = Start(vm, lapicDataSegment: false);

        irq.Signal();

        AssertHandlerRan(vm, capture, driver);
        vm.Engine.UnregisterIrqfd(irq.Fd, IsaGsi);
    }

    [KvmFact]
    public void SignalMsi_FixedVectorToApic0_GuestHandlerRuns()
    {
        using var vm = new TestVm();
        LoadInterruptGuest(vm, viaPic: false, MsiVector);
        var (_, capture, driver) = Start(vm, lapicDataSegment: true);

        // MSI address 0xFEE0_0000 | destination ID << 12, data = vector, fixed delivery, edge (Intel SDM Vol. 3A §10.11).
        vm.Engine.Interrupts.SignalMsi(LapicBase, MsiVector);

        AssertHandlerRan(vm, capture, driver);
        Assert.Equal(0, ((KvmIrqChip)vm.Engine.Interrupts).FailedMsiCount);
    }

    [KvmFact]
    public void SignalMsi_GuestProgrammedGarbage_DoesNotThrow()
    {
        using var vm = new TestVm();
        _ = vm.CreateVcpu(0);

        var e = Record.Exception(() => vm.Engine.Interrupts.SignalMsi(0xDEAD_0000_1234, 0xFFFF_FFFF));

        Assert.Null(e);
    }

    [KvmFact]
    public void SetGsi_OutsideRoutedRange_ThrowsArgumentOutOfRange()
    {
        using var vm = new TestVm();

        Assert.Throws<ArgumentOutOfRangeException>(() => vm.Engine.Interrupts.SetGsi(KvmIrqChip.GsiCount, true));
        Assert.Throws<ArgumentOutOfRangeException>(() => vm.Engine.Interrupts.SetGsi(-1, true));
    }

    [KvmFact]
    public void RegisterIoEventfd_GuestWritesPort_EventFdSignalledAndBusNotCalled()
    {
        const ushort doorbell = 0x30;
        using var vm = new TestVm();
        using var notify = new EventFd();
        var busDevice = new PortCaptureDevice();
        vm.Pio.Register(doorbell, 1, busDevice, "doorbell");
        var capture = new PortCaptureDevice();
        vm.Pio.Register(CapturePort, 1, capture, "capture");
        vm.Engine.RegisterIoEventfd(doorbell, 1, notify.Fd, isPio: true);
        vm.Load(EntryAddress, GuestAsm.Assemble(16, EntryAddress, a =>
        {
            a.mov(al, 7);
            a.@out((byte)doorbell, al);
            a.mov(al, 1);
            a.@out((byte)CapturePort, al);
            a.cli();
            a.hlt();
        }));
        var vcpu = vm.CreateVcpu(0);
        var s = new CpuState();
        s.System.Cs = SegmentRegister.RealMode(0, code: true);
        s.Registers.Rip = EntryAddress;
        vcpu.SetState(s);

        var exit = new VcpuDriver(vcpu, vm.Control).Finish(kickPeriod: TimeSpan.FromMilliseconds(20));

        Assert.Equal(VcpuExitReason.Halted, exit.Reason);
        Assert.Single(capture.Writes);
        Assert.True(notify.TryRead(out ulong count));
        Assert.Equal(1UL, count);
        Assert.Empty(busDevice.Writes);
        vm.Engine.UnregisterIoEventfd(doorbell, 1, notify.Fd, isPio: true);
    }
}
