// KvmVcpu against the host's /dev/kvm with tiny guests assembled here. CPL-0 parts are kept to a few instructions
// (on hosts without VT-x/AMD-V the kernel emulates them slowly); loops run at CPL 3.
using System.Diagnostics;
using Iced.Intel;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Vm;
using Ringvisor.Kvm.Native;
using Ringvisor.Kvm.Tests.Support;
using Ringvisor.TestSupport;
using Xunit.Abstractions;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Kvm.Tests;

public class KvmVcpuTests(ITestOutputHelper output)
{
    private const ulong CodeAddress = 0x1_0000;
    private const ulong UserCodeAddress = 0x1_1000;
    private const ulong UserStackTop = 0x7_0000;
    private const ushort CapturePort = 0x10;
    private const ulong RflagsIopl3 = 3UL << 12; // Intel SDM Vol. 1 §3.4.3.3: CPL 3 may use IN/OUT when IOPL = 3

    private static CpuState RealModeState(ushort ip)
    {
        var s = new CpuState();
        s.System.Cs = SegmentRegister.RealMode(0, code: true);
        s.Registers.Rip = ip;
        s.Registers.Rflags = CpuRegisters.RflagsReserved;
        s.Registers.Rsp = 0x7000;
        return s;
    }

    /// <summary>CPL-0 code that iretq's to <see cref="UserCodeAddress"/> at CPL 3 with IOPL 3 and IF = 0.</summary>
    private static byte[] EnterUserMode() => GuestAsm.Assemble(64, CodeAddress, a =>
    {
        a.push(LongModeGuest.UserData | 3);
        a.push((int)UserStackTop);
        a.push((int)(RflagsIopl3 | CpuRegisters.RflagsReserved));
        a.push(LongModeGuest.UserCode | 3);
        a.push((int)UserCodeAddress);
        a.iretq();
    });

    [KvmFact]
    public void Run_RealModeOutThenHlt_DeviceSeesEveryWidthAndRunReportsHalted()
    {
        using var vm = new TestVm();
        var dev = new PortCaptureDevice();
        vm.Pio.Register(CapturePort, 4, dev, "capture");
        vm.Load(0x7C00, GuestAsm.Assemble(16, 0x7C00, a =>
        {
            a.mov(al, 0x5A);
            a.@out((byte)CapturePort, al);
            a.mov(ax, 0xBEEF);
            a.@out(CapturePort + 2, ax);
            a.mov(eax, 0xCAFE_F00D);
            a.mov(dx, CapturePort);
            a.@out(dx, eax);
            a.cli();
            a.hlt();
        }));
        var vcpu = vm.CreateVcpu(0);
        vcpu.SetState(RealModeState(0x7C00));

        var exit = new VcpuDriver(vcpu, vm.Control).Finish(kickPeriod: TimeSpan.FromMilliseconds(20));

        Assert.Equal(VcpuExitReason.Halted, exit.Reason);
        Assert.Equal([(0UL, 0x5AUL, 1), (2UL, 0xBEEFUL, 2), (0UL, 0xCAFE_F00DUL, 4)], dev.Writes);
    }

    [KvmFact]
    public void Run_LongModeGuestPrintsAndWritesDebugExit_StringReachesPortAndVmStopsWithValue()
    {
        const string message = "Hello from long mode!\n";
        const byte exitValue = 0x21;
        using var vm = new TestVm();
        var uart = new PortCaptureDevice();
        vm.Pio.Register(0x3F8, 8, uart, "uart-capture");
        LongModeGuest.Build(vm.Memory);
        vm.Load(CodeAddress, GuestAsm.Assemble(64, CodeAddress, a =>
        {
            var msg = a.CreateLabel();
            var spin = a.CreateLabel();
            a.lea(rsi, __[msg]);
            a.mov(ecx, message.Length);
            a.mov(dx, 0x3F8);
            a.rep.outsb();
            a.mov(al, exitValue);
            a.@out((byte)DebugExitDevice.Port, al);
            a.Label(ref spin);
            a.jmp(spin);
            a.Label(ref msg);
            a.db(System.Text.Encoding.ASCII.GetBytes(message));
        }));
        var vcpu = vm.CreateVcpu(0);
        vcpu.SetState(LongModeGuest.Cpl0State(CodeAddress));

        var exit = new VcpuDriver(vcpu, vm.Control).Finish();

        Assert.Equal(VcpuExitReason.Kicked, exit.Reason);
        Assert.Equal(message, uart.Text);
        Assert.Equal(VmStopReason.DebugExit, vm.Control.Reason);
        Assert.Equal((exitValue << 1) | 1, vm.Control.ExitStatus);
    }

    [KvmFact]
    public void Run_StringAndWideInput_FillsGuestMemoryAndRegisters()
    {
        using var vm = new TestVm();
        vm.Pio.Register(CapturePort, 4, new PortCaptureDevice(firstReadByte: 0x30), "source");
        LongModeGuest.Build(vm.Memory);
        vm.Load(CodeAddress, GuestAsm.Assemble(64, CodeAddress, a =>
        {
            a.mov(edi, 0x2_0000);
            a.mov(ecx, 16);
            a.mov(dx, CapturePort);
            a.rep.insb();
            a.@in(eax, dx);
            a.mov(ebx, eax);
            a.@in(ax, dx);
            a.@out((byte)DebugExitDevice.Port, al);
        }));
        var vcpu = vm.CreateVcpu(0);
        vcpu.SetState(LongModeGuest.Cpl0State(CodeAddress));

        new VcpuDriver(vcpu, vm.Control).Finish();

        byte[] got = new byte[16];
        vm.Memory.Read(0x2_0000, got);
        Assert.Equal(Enumerable.Range(0x30, 16).Select(b => (byte)b), got);
        var regs = vcpu.GetState().Registers;
        Assert.Equal(0x4342_4140UL, regs.Rbx);
        Assert.Equal(0x4544UL, regs.Rax & 0xFFFF);
    }

    [KvmFact]
    public void Run_Cpl3LoopOf100MillionIterations_CompletesWithFinalCounter()
    {
        const int iterations = 100_000_000;
        using var vm = new TestVm();
        LongModeGuest.Build(vm.Memory);
        vm.Load(CodeAddress, EnterUserMode());
        vm.Load(UserCodeAddress, GuestAsm.Assemble(64, UserCodeAddress, a =>
        {
            var loop = a.CreateLabel();
            var spin = a.CreateLabel();
            a.xor(eax, eax);
            a.mov(ecx, iterations);
            a.Label(ref loop);
            a.inc(rax);
            a.dec(rcx);
            a.jnz(loop);
            a.mov(__qword_ptr[0x8_0000], rax);
            a.@out((byte)DebugExitDevice.Port, al);
            a.Label(ref spin);
            a.jmp(spin);
        }));
        var vcpu = vm.CreateVcpu(0);
        vcpu.SetState(LongModeGuest.Cpl0State(CodeAddress));

        var sw = Stopwatch.StartNew();
        new VcpuDriver(vcpu, vm.Control).Finish();
        output.WriteLine($"10^8 CPL-3 iterations took {sw.ElapsedMilliseconds} ms");

        Assert.Equal(VmStopReason.DebugExit, vm.Control.Reason);
        var state = vcpu.GetState();
        Assert.Equal((ulong)iterations, state.Registers.Rax);
        Assert.Equal(3, state.System.Cs.Dpl);
        Assert.True(vm.Memory.TryRead(0x8_0000, out ulong stored));
        Assert.Equal((ulong)iterations, stored);
    }

    [KvmFact]
    public void Run_ThousandsOfPioExits_AllocateNothingPerExit()
    {
        const int exits = 5_000;
        using var vm = new TestVm();
        var counter = new CountingDevice();
        vm.Pio.Register(CapturePort, 1, counter, "counter");
        LongModeGuest.Build(vm.Memory);
        vm.Load(CodeAddress, EnterUserMode());
        vm.Load(UserCodeAddress, GuestAsm.Assemble(64, UserCodeAddress, a =>
        {
            var loop = a.CreateLabel();
            var spin = a.CreateLabel();
            a.mov(ecx, 2 * exits);
            a.Label(ref loop);
            a.@out((byte)CapturePort, al);
            a.dec(ecx);
            a.jnz(loop);
            a.@out((byte)DebugExitDevice.Port, al);
            a.Label(ref spin);
            a.jmp(spin);
        }));
        var vcpu = vm.CreateVcpu(0);
        vcpu.SetState(LongModeGuest.Cpl0State(CodeAddress));
        counter.MeasureFrom = exits; // the first half warms up the JIT's tiers

        while (!vm.Control.StopRequested)
        {
            _ = vcpu.Run();
        }

        Assert.Equal(2 * exits, counter.Count);
        long allocated = counter.AllocatedAtEnd - counter.AllocatedAtStart;
        output.WriteLine($"{allocated} bytes allocated over {exits} PIO exits");
        Assert.True(allocated < exits, $"{allocated} bytes allocated over {exits} exits");
    }

    /// <summary>Counts writes and samples this thread's allocation counter from the vCPU thread itself.</summary>
    private sealed class CountingDevice : Ringvisor.Core.Bus.IBusDevice
    {
        public int MeasureFrom { get; set; }

        public int Count { get; private set; }

        public long AllocatedAtStart { get; private set; }

        public long AllocatedAtEnd { get; private set; }

        public void Read(ulong offset, Span<byte> data) => data.Clear();

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            Count++;
            if (Count == MeasureFrom)
            {
                AllocatedAtStart = GC.GetAllocatedBytesForCurrentThread();
            }

            AllocatedAtEnd = GC.GetAllocatedBytesForCurrentThread();
        }
    }

    [KvmFact]
    public void Run_MmioOutsideRam_ReachesDeviceWithAddressAndData()
    {
        const ulong mmioBase = 0xD000_0000;
        using var vm = new TestVm();
        var dev = new MmioRecorderDevice();
        vm.Mmio.Register(mmioBase, 0x1000, dev, "recorder");
        LongModeGuest.Build(vm.Memory);
        vm.Load(CodeAddress, GuestAsm.Assemble(64, CodeAddress, a =>
        {
            a.mov(rbx, mmioBase);
            a.mov(__dword_ptr[rbx], 0x1234_5678);
            a.mov(rax, 0x1122_3344_5566_7788);
            a.mov(__qword_ptr[rbx + 8], rax);
            a.mov(eax, __dword_ptr[rbx + 0x10]);
            a.@out((byte)DebugExitDevice.Port, al);
        }));
        var vcpu = vm.CreateVcpu(0);
        vcpu.SetState(LongModeGuest.Cpl0State(CodeAddress));

        new VcpuDriver(vcpu, vm.Control).Finish();

        Assert.Equal(VmStopReason.DebugExit, vm.Control.Reason);
        var writes = dev.Writes;
        Assert.Equal(2, writes.Count);
        Assert.Equal(0UL, writes[0].Offset);
        Assert.Equal(BitConverter.GetBytes(0x1234_5678u), writes[0].Data);
        Assert.Equal(8UL, writes[1].Offset);
        Assert.Equal(BitConverter.GetBytes(0x1122_3344_5566_7788UL), writes[1].Data);
        Assert.Equal((0x10UL, 4), Assert.Single(dev.Reads));
        uint expected = BitConverter.ToUInt32([.. Enumerable.Range(0, 4).Select(i => MmioRecorderDevice.ReadByteAt(0x10, i))]);
        Assert.Equal(expected, (uint)vcpu.GetState().Registers.Rax);
    }

    [KvmFact]
    public void Run_BspSendsInitSipi_ApStartsInRealModeAndBothWriteTheirPorts()
    {
        const byte sipiVector = 0x08; // the AP starts at 0x8000 (Intel SDM Vol. 3A §8.4.4.1)
        using var vm = new TestVm(vcpuCount: 2);
        var dev = new PortCaptureDevice();
        vm.Pio.Register(CapturePort, 2, dev, "capture");
        LongModeGuest.Build(vm.Memory);
        vm.Load(CodeAddress, GuestAsm.Assemble(64, CodeAddress, a =>
        {
            // xAPIC ICR (Intel SDM Vol. 3A §10.6.1): INIT = 0x4500, SIPI = 0x4600 | vector, with the "all excluding
            // self" shorthand (bits 19:18 = 11). A physical destination (ICR-high = APIC ID 1) was not delivered by
            // this host's KVM (no VT-x), so the shorthand keeps the test about the engine, not the host.
            a.mov(al, 0xB0);
            a.@out((byte)CapturePort, al);
            a.mov(rbx, 0xFEE0_0000);
            a.mov(__dword_ptr[rbx + 0x300], 0x000C_4500);
            a.mov(__dword_ptr[rbx + 0x300], 0x000C_4600 | sipiVector);
            a.hlt();
        }));
        vm.Load((ulong)sipiVector << 12, GuestAsm.Assemble(16, 0, a =>
        {
            a.mov(al, 0xA1);
            a.@out(CapturePort + 1, al);
            a.cli();
            a.hlt();
        }));
        var bsp = vm.CreateVcpu(0);
        var ap = vm.CreateVcpu(1);
        bsp.SetState(LongModeGuest.Cpl0State(CodeAddress));

        Assert.Equal(1u << 24, ap.ReadLapicRegister(0x20)); // xAPIC ID register: bits 31:24 (SDM Vol. 3A §10.4.6)
        Assert.Equal(KvmMpStateValue.Runnable, bsp.MpState);
        Assert.Equal(KvmMpStateValue.Uninitialized, ap.MpState);
        // Until it has run, the AP also reports Halted (waiting for SIPI): only a halt after its write counts.
        var apDriver = new VcpuDriver(ap, vm.Control, haltIsFinal: () => dev.Writes.Any(w => w.Offset == 1));
        var bspDriver = new VcpuDriver(bsp, vm.Control);
        var apExit = apDriver.Finish(kickPeriod: TimeSpan.FromMilliseconds(20));
        var bspExit = bspDriver.Finish(kickPeriod: TimeSpan.FromMilliseconds(20));

        Assert.Equal(VcpuExitReason.Halted, bspExit.Reason);
        Assert.Equal(VcpuExitReason.Halted, apExit.Reason);
        Assert.Equal(KvmMpStateValue.Halted, ap.MpState);
        Assert.Contains((0UL, 0xB0UL, 1), dev.Writes);
        Assert.Contains((1UL, 0xA1UL, 1), dev.Writes);
        Assert.Equal(2, dev.Writes.Count);
    }

    [KvmFact]
    public void Kick_ApWaitingForSipi_RunReportsHalted()
    {
        using var vm = new TestVm(vcpuCount: 2);
        _ = vm.CreateVcpu(0);
        var ap = vm.CreateVcpu(1);

        var exit = new VcpuDriver(ap, vm.Control).Finish(kickPeriod: TimeSpan.FromMilliseconds(20));

        Assert.Equal(VcpuExitReason.Halted, exit.Reason);
        Assert.Equal(KvmMpStateValue.Uninitialized, ap.MpState);
    }

    [KvmFact]
    public void Kick_GuestSpinningAtCpl3_RunReturnsKickedWithinASecond()
    {
        using var vm = new TestVm();
        var dev = new PortCaptureDevice();
        vm.Pio.Register(CapturePort, 1, dev, "capture");
        LongModeGuest.Build(vm.Memory);
        vm.Load(CodeAddress, EnterUserMode());
        vm.Load(UserCodeAddress, GuestAsm.Assemble(64, UserCodeAddress, a =>
        {
            var spin = a.CreateLabel();
            a.mov(al, 1);
            a.@out((byte)CapturePort, al);
            a.Label(ref spin);
            a.jmp(spin);
        }));
        var vcpu = vm.CreateVcpu(0);
        vcpu.SetState(LongModeGuest.Cpl0State(CodeAddress));
        VcpuExit? exit = null;
        var thread = new Thread(() => exit = vcpu.Run()) { IsBackground = true };
        thread.Start();
        Assert.True(dev.WaitForWrites(1, VcpuDriver.HangGuard), "the guest never reached its spin loop");
        Thread.Sleep(100); // let it spin in guest mode

        var sw = Stopwatch.StartNew();
        vcpu.Kick();
        bool returned = thread.Join(TimeSpan.FromSeconds(1));
        output.WriteLine($"Run returned {sw.Elapsed.TotalMilliseconds:F3} ms after Kick");
        if (!returned)
        {
            vm.Control.RequestStop(VmStopReason.UserQuit, 1);
            thread.Join(VcpuDriver.HangGuard);
        }

        Assert.True(returned, "Run did not return within a second of Kick");
        Assert.Equal(VcpuExitReason.Kicked, exit?.Reason);
        Assert.Equal(UserCodeAddress + 4, vcpu.GetState().Registers.Rip);
    }

    [KvmFact]
    public void Dispose_WhileRunSpinsOnAnotherThread_RunReturnsAndLaterRunThrows()
    {
        using var vm = new TestVm();
        var dev = new PortCaptureDevice();
        vm.Pio.Register(CapturePort, 1, dev, "capture");
        LongModeGuest.Build(vm.Memory);
        vm.Load(CodeAddress, EnterUserMode());
        vm.Load(UserCodeAddress, GuestAsm.Assemble(64, UserCodeAddress, a =>
        {
            var spin = a.CreateLabel();
            a.@out((byte)CapturePort, al);
            a.Label(ref spin);
            a.jmp(spin);
        }));
        var vcpu = vm.CreateVcpu(0);
        vcpu.SetState(LongModeGuest.Cpl0State(CodeAddress));
        VcpuExit? exit = null;
        var thread = new Thread(() => exit = vcpu.Run()) { IsBackground = true };
        thread.Start();
        Assert.True(dev.WaitForWrites(1, VcpuDriver.HangGuard), "the guest never reached its spin loop");

        vcpu.Dispose();

        Assert.True(thread.Join(VcpuDriver.HangGuard));
        Assert.Equal(VcpuExitReason.Kicked, exit?.Reason);
        Assert.Throws<ObjectDisposedException>(() => vcpu.Run());
        vcpu.Kick(); // harmless after Dispose
    }

    [KvmFact]
    public void Kick_BeforeRun_NextRunReturnsKickedAndTheOneAfterContinues()
    {
        using var vm = new TestVm();
        LongModeGuest.Build(vm.Memory);
        vm.Load(CodeAddress, GuestAsm.Assemble(64, CodeAddress, a =>
        {
            a.mov(al, 0x07);
            a.@out((byte)DebugExitDevice.Port, al);
        }));
        var vcpu = vm.CreateVcpu(0);
        vcpu.SetState(LongModeGuest.Cpl0State(CodeAddress));

        vcpu.Kick();
        var first = vcpu.Run();

        Assert.Equal(VcpuExitReason.Kicked, first.Reason);
        Assert.Equal(CodeAddress, vcpu.GetState().Registers.Rip);
        Assert.False(vm.Control.StopRequested);
        var second = vcpu.Run();
        Assert.Equal(VcpuExitReason.Kicked, second.Reason);
        Assert.Equal(VmStopReason.DebugExit, vm.Control.Reason);
        Assert.Equal((0x07 << 1) | 1, vm.Control.ExitStatus);
    }

    [KvmFact]
    public void Run_TripleFault_ReturnsShutdown()
    {
        using var vm = new TestVm();
        LongModeGuest.Build(vm.Memory);
        vm.Load(CodeAddress, GuestAsm.Assemble(64, CodeAddress, a => a.ud2()));
        var vcpu = vm.CreateVcpu(0);
        vcpu.SetState(LongModeGuest.Cpl0State(CodeAddress));

        var exit = new VcpuDriver(vcpu, vm.Control).Finish();

        Assert.Equal(VcpuExitReason.Shutdown, exit.Reason);
    }

    [KvmFact]
    public void GetState_AfterSetState_RoundTripsRegistersSegmentsAndControlRegisters()
    {
        using var vm = new TestVm();
        var vcpu = vm.CreateVcpu(0);
        var s = LongModeGuest.Cpl0State(CodeAddress);
        s.Registers.Rax = 0x1111;
        s.Registers.R15 = 0xF0F0_F0F0_F0F0_F0F0;
        s.Registers.Rbp = 0x1234_5678_9ABC;
        s.System.Fs.Base = 0x7FFF_0000;
        s.System.Gs.Base = 0xFFFF_8000_0000_0000;
        s.System.Cr2 = 0xDEAD_B000;
        s.Msrs[0xC000_0082] = 0xFFFF_FFFF_8100_0000; // IA32_LSTAR

        vcpu.SetState(s);
        var got = vcpu.GetState();

        Assert.Equal(s.Registers, got.Registers);
        Assert.Equal(s.System.Cs.Selector, got.System.Cs.Selector);
        Assert.True(got.System.Cs.Long);
        Assert.Equal(s.System.Fs.Base, got.System.Fs.Base);
        Assert.Equal(s.System.Gs.Base, got.System.Gs.Base);
        Assert.Equal(s.System.Tr.Base, got.System.Tr.Base);
        Assert.Equal(s.System.Gdt.Base, got.System.Gdt.Base);
        Assert.Equal(s.System.Gdt.Limit, got.System.Gdt.Limit);
        Assert.Equal(s.System.Cr0, got.System.Cr0);
        Assert.Equal(s.System.Cr2, got.System.Cr2);
        Assert.Equal(s.System.Cr3, got.System.Cr3);
        Assert.Equal(s.System.Cr4, got.System.Cr4);
        Assert.Equal(s.System.Efer, got.System.Efer);
        Assert.Equal(0xFFFF_FFFF_8100_0000UL, got.Msrs[0xC000_0082]);
        Assert.Equal(KvmVcpu.PatPowerUp, got.Msrs[KvmVcpu.MsrPat]);
        Assert.NotEqual(0UL, got.Msrs[KvmVcpu.MsrMiscEnable] & KvmVcpu.MiscEnableFastStrings);
    }

    [KvmFact]
    public void SetState_ApWithBspFlagInApicBase_KeepsBspFlagOnVcpu0Only()
    {
        using var vm = new TestVm(vcpuCount: 2);
        var bsp = vm.CreateVcpu(0);
        var ap = vm.CreateVcpu(1);
        var s = LongModeGuest.Cpl0State(CodeAddress);

        bsp.SetState(s);
        ap.SetState(s);

        Assert.Equal(0xFEE0_0900UL, bsp.GetState().System.ApicBase);
        Assert.Equal(0xFEE0_0800UL, ap.GetState().System.ApicBase);
    }

    [KvmFact]
    public void Cpuid_GuestAtCpl0_SeesKvmSignatureApicIdAndOverrides()
    {
        var overrides = new Dictionary<(uint, uint), (uint, uint, uint, uint)>
        {
            [(0x4000_0001, 0)] = (0, 0x1111, 0x2222, 0x3333),
        };
        using var vm = new TestVm(vcpuCount: 2, cpuidOverrides: overrides);
        LongModeGuest.Build(vm.Memory);
        vm.Load(CodeAddress, GuestAsm.Assemble(64, CodeAddress, a =>
        {
            a.mov(eax, 0x4000_0000);
            a.cpuid();
            a.mov(r8d, ebx);
            a.mov(r9d, ecx);
            a.mov(r10d, edx);
            a.mov(eax, 1);
            a.cpuid();
            a.mov(r11d, ebx);
            a.mov(r12d, ecx);
            a.mov(eax, 0x4000_0001);
            a.cpuid();
            a.@out((byte)DebugExitDevice.Port, al);
        }));
        _ = vm.CreateVcpu(0);
        var vcpu = vm.CreateVcpu(1);
        vcpu.MpState = KvmMpStateValue.Runnable;
        vcpu.SetState(LongModeGuest.Cpl0State(CodeAddress));

        new VcpuDriver(vcpu, vm.Control).Finish();

        var r = vcpu.GetState().Registers;
        Assert.Equal((KvmCpuid.SignatureEbx, KvmCpuid.SignatureEcx, KvmCpuid.SignatureEdx), ((uint)r.R8, (uint)r.R9, (uint)r.R10));
        Assert.Equal(1UL, (r.R11 >> 24) & 0xFF);
        Assert.NotEqual(0UL, r.R12 & (1UL << 31));
        Assert.Equal((0x1111UL, 0x2222UL, 0x3333UL), (r.Rbx, r.Rcx, r.Rdx));
    }
}
