// Directed regressions for interpreter bugs that kvm-unit-tests found (docs/kvm-unit-tests.md). Each guest is
// assembled here; none of the kvm-unit-tests code is used.
using Iced.Intel;
using Ringvisor.Core.Cpu;
using Ringvisor.Devices.Platform;
using Ringvisor.Devices.Platform.Timing;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Interpreter;

public sealed class KvmUnitTestsRegressionTests
{
    private const ulong Handler = 0x30000;
    private const ulong UserCode = 0x50000;
    private const uint MsrGsBase = 0xC000_0101;

    [Fact]
    public void Iretq_ToUserWithKernelGs_NullsSelectorButKeepsGsBase()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        const ulong gsBase = 0x40_0000;
        const ulong magic = 0x1122_3344_5566_7788;
        g.Write64(gsBase + 0x100, magic);
        g.Write64(GuestHarness.TssBase + 4, 0x60000); // RSP0
        g.SetGate64(0x80, Handler, dpl: 3);
        g.Code64(Handler, a => a.hlt());
        g.Code64(UserCode, a =>
        {
            a.mov(r13, __qword_ptr.gs[0x100]);
            a.mov(r14, gs);
            a.@int(0x80);
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(ecx, MsrGsBase);
            a.mov(eax, (uint)gsBase);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(r14, ~0UL);
            a.push(GuestHarness.UserDs | 3);
            a.push(0x58000);
            a.push(0x2);
            a.push(GuestHarness.UserCs | 3);
            a.mov(rax, UserCode);
            a.push(rax);
            a.iretq();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        CpuRegisters r = g.State.Registers;

        // SDM IRET: GS (DPL 0 < CPL 3) is loaded with a null selector; the base from IA32_GS_BASE stays in use.
        Assert.Equal(0UL, r.R14);
        Assert.Equal(magic, r.R13);
    }

    [Fact]
    public void Iretq_FromNmiHandlerWithNestedNmiPending_TakesItRightAfterIret()
    {
        var apic = new FakeLocalApic();
        using var g = new GuestHarness([apic]);
        g.Pio.Register(NmiPort, 1, new NmiTrigger(apic), "nmi-trigger");
        g.SetupLongMode();
        g.SetGate64(2, Handler);
        g.Code64(Handler, a =>
        {
            var done = a.CreateLabel();
            a.inc(r12);
            a.cmp(r12, 1);
            a.jne(done);
            a.@out(NmiPort, al); // a second NMI while the first is being handled: blocked until IRET
            a.nop();
            a.nop();
            a.mov(r14, r12);
            a.Label(ref done);
            a.iretq();
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.xor(r12d, r12d);
            a.@out(NmiPort, al);
            a.nop();
            a.mov(r13, r12);
            a.hlt();
        });

        var ex = g.Run();
        Assert.True(ex.Reason == VcpuExitReason.Halted, $"{ex.Reason} rip={g.State.Registers.Rip:x} rsp={g.State.Registers.Rsp:x} r12={g.State.Registers.R12} {g.Host.Stats.Format()}");
        CpuRegisters r = g.State.Registers;
        Assert.Equal(1UL, r.R14); // not nested inside the handler
        Assert.Equal(2UL, r.R13); // delivered after the first handler's IRETQ, before the main code went on
    }

    [Fact]
    public void Syscall_WithTfMaskedByFmask_TakesNoSingleStepTrapAtEntry()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        const ulong syscallEntry = 0x31000;
        g.SetGate64(1, Handler);
        g.Code64(Handler, a =>
        {
            a.inc(r12);
            a.and(__qword_ptr[rsp + 16], ~0x100);
            a.iretq();
        });
        g.Code64(syscallEntry, a =>
        {
            a.mov(r13, 1);
            a.hlt();
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(ecx, 0xC0000081); // STAR: SYSCALL CS = 0x08
            a.mov(edx, 0x0018_0008);
            a.xor(eax, eax);
            a.wrmsr();
            a.mov(ecx, 0xC0000082); // LSTAR
            a.mov(eax, (uint)syscallEntry);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(ecx, 0xC0000084); // FMASK: TF
            a.mov(eax, 0x100);
            a.wrmsr();
            a.xor(r12d, r12d);
            a.pushfq();
            a.or(__qword_ptr[rsp], 0x100);
            a.popfq();
            a.syscall();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        CpuRegisters r = g.State.Registers;
        Assert.Equal(1UL, r.R13);
        Assert.Equal(0UL, r.R12);
        Assert.Equal(0UL, g.State.Registers.Rflags & 0x100);
    }

    [Fact]
    public void Cpuid_ApicGloballyDisabled_ClearsTheApicFeatureBit()
    {
        var time = new HostTimeSource();
        using var apic = new LocalApic(0, 0, new ApicBus(), time, new HostDeviceTimerFactory(time));
        using var g = new GuestHarness([apic]);
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(eax, 1);
            a.cpuid();
            a.mov(r12d, edx);
            a.mov(ecx, 0x1B); // IA32_APIC_BASE: clear EN (bit 11)
            a.rdmsr();
            a.and(eax, ~0x800);
            a.wrmsr();
            a.mov(eax, 1);
            a.cpuid();
            a.mov(r13d, edx);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        CpuRegisters r = g.State.Registers;

        // SDM Vol. 3A §11.4.3: with IA32_APIC_BASE.EN clear, CPUID.01H:EDX.APIC[bit 9] reads 0.
        Assert.NotEqual(0UL, r.R12 & (1 << 9));
        Assert.Equal(0UL, r.R13 & (1 << 9));
    }

    [Fact]
    public void MovSs_WithTf_SkipsTheTrapAfterItAndStepsTheNextInstruction()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.SetGate64(1, Handler);

        // #DB handler: record the trap RIP (frame[0]) at 0x40000 + 8 * count.
        g.Code64(Handler, a =>
        {
            a.mov(rax, __qword_ptr[rsp]);
            a.mov(rbx, 0x40000UL);
            a.mov(__qword_ptr[rbx + r12 * 8], rax);
            a.inc(r12);
            a.iretq();
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.xor(r12d, r12d);
            a.mov(cx, ss);
            a.pushfq();
            a.or(__qword_ptr[rsp], 0x100);
            a.popfq();
            a.mov(ss, cx);
            a.nop();
            a.pushfq();
            a.and(__qword_ptr[rsp], ~0x100);
            a.popfq();
            a.hlt();
        });
        byte[] code = GuestHarness.Assemble(64, GuestHarness.CodeBase, a =>
        {
            a.xor(r12d, r12d);
            a.mov(cx, ss);
            a.pushfq();
            a.or(__qword_ptr[rsp], 0x100);
            a.popfq();
            a.mov(ss, cx);
        });
        ulong nopRip = GuestHarness.CodeBase + (ulong)code.Length;

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);

        // No trap after MOV SS (its RIP would be nopRip); the first is after the NOP, then one after each instruction
        // until the POPFQ that clears TF (PUSHFQ, AND, POPFQ): four in all.
        Assert.Equal(4UL, g.State.Registers.R12);
        Assert.Equal(nopRip + 1, g.Read64(0x40000));
    }

    [Fact]
    public void MovDr_WithDr7GeneralDetect_FaultsWithBdAndClearsGd()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.SetGate64(1, Handler);
        g.Code64(Handler, a =>
        {
            a.mov(rax, __qword_ptr[rsp]);
            a.mov(r13, rax); // faulting RIP
            a.mov(r14, dr6);  // GD is clear now, so this MOV DR does not fault again
            a.mov(r15, dr7);
            a.inc(r12);
            a.iretq();
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.xor(r12d, r12d);
            a.mov(eax, 0x2400); // DR7: GD | reserved-1 bit 10
            a.mov(dr7, rax);
            a.mov(rax, dr0);    // faults once, then re-executes and completes
            a.hlt();
        });
        ulong faultRip = GuestHarness.CodeBase + (ulong)GuestHarness.Assemble(64, GuestHarness.CodeBase, a =>
        {
            a.xor(r12d, r12d);
            a.mov(eax, 0x2400);
            a.mov(dr7, rax);
        }).Length;

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        CpuRegisters r = g.State.Registers;
        Assert.Equal(1UL, r.R12);
        Assert.Equal(faultRip, r.R13);
        Assert.NotEqual(0UL, r.R14 & (1 << 13)); // DR6.BD
        Assert.Equal(0UL, r.R15 & (1 << 13));    // DR7.GD cleared on delivery
    }

    [Fact]
    public void Hlt_WithTf_TakesItsTrapOnWakeBeforeTheInterrupt()
    {
        var apic = new FakeLocalApic();
        using var g = new GuestHarness([apic]);
        g.SetupLongMode();
        g.SetGate64(1, Handler);
        g.SetGate64(0x40, Handler + 0x100);

        // #DB: record the trap RIP at 0x40000 + 8 * count.
        g.Code64(Handler, a =>
        {
            a.mov(rax, __qword_ptr[rsp]);
            a.mov(rbx, 0x40000UL);
            a.mov(__qword_ptr[rbx + r12 * 8], rax);
            a.inc(r12);
            a.iretq();
        });

        // Interrupt: note how many #DBs came first, stop single-stepping the interrupted code.
        g.Code64(Handler + 0x100, a =>
        {
            a.mov(r13, r12);
            a.and(__qword_ptr[rsp + 16], ~0x100);
            a.iretq();
        });
        Action<Assembler> prefix = a =>
        {
            a.xor(r12d, r12d);
            a.pushfq();
            a.or(__qword_ptr[rsp], 0x100);
            a.popfq();
            a.sti();
        };
        g.Code64(GuestHarness.CodeBase, a =>
        {
            prefix(a);
            a.hlt();
            a.cli();
            a.hlt();
        });
        ulong hltRip = GuestHarness.CodeBase + (ulong)GuestHarness.Assemble(64, GuestHarness.CodeBase, prefix).Length;

        // The interrupt comes once the vCPU has parked in the HLT (a counter, not a delay).
        var raiser = new Thread(() =>
        {
            SpinWait.SpinUntil(() => g.Host.Stats.HaltExits > 0);
            apic.Raise(0x40);
        });
        raiser.Start();
        VcpuExit exit = g.Run();
        raiser.Join();

        Assert.Equal(VcpuExitReason.Halted, exit.Reason);
        CpuRegisters r = g.State.Registers;

        // One trap after STI (at the HLT), one for the HLT when the interrupt ends the halt, then the interrupt.
        Assert.Equal(2UL, r.R12);
        Assert.Equal(2UL, r.R13);
        Assert.Equal(hltRip, g.Read64(0x40000));
        Assert.Equal(hltRip + 1, g.Read64(0x40008));
    }

    [Theory]
    [InlineData(0xAAAA_AAAAUL, true)]
    [InlineData(0x0000_7FFFUL, false)]
    public void Ltr_TssBaseUpperHalf_NonCanonicalIsGpWithSelector(ulong upperBase, bool faults)
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Write64(GuestHarness.GdtBase + GuestHarness.TssSel, GuestHarness.Descriptor(GuestHarness.TssBase, 0x67, 0x89, 0x0));
        g.Write64(GuestHarness.GdtBase + GuestHarness.TssSel + 8, upperBase);
        g.SetGate64(13, Handler);
        g.Code64(Handler, a =>
        {
            a.mov(r13, __qword_ptr[rsp]); // error code
            a.hlt();
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(r13, ~0UL);
            a.mov(ax, GuestHarness.TssSel);
            a.ltr(ax);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(faults ? GuestHarness.TssSel : ~0UL, g.State.Registers.R13);
    }

    [Fact]
    public void KvmClock_SystemTimeAndTscTimestamp_ComeFromOneClockReading()
    {
        using var memory = Ringvisor.Core.Memory.GuestMemory.Create(1 << 20);
        var host = new CpuHost(memory, new Ringvisor.Core.Bus.IoBus("pio", 0x10000), new Ringvisor.Core.Bus.IoBus("mmio", 1UL << 52))
        {
            Time = new AcceleratingClock(),
        };
        using var vcpu = new BtVcpu(host, 0);
        byte[] code = GuestHarness.Assemble(16, 0x7C00, a =>
        {
            a.mov(ecx, 0x4B56_4D01); // MSR_KVM_SYSTEM_TIME_NEW: struct at 0x2000, enabled
            a.mov(eax, 0x2001);
            a.xor(edx, edx);
            a.wrmsr();
            a.hlt();
        });
        Assert.Equal(Ringvisor.Core.Memory.MemoryAccessResult.Ok, memory.Write(0x7C00, code));
        var s = new CpuState();
        s.Registers.Rip = 0x7C00;
        s.Registers.Rflags = 2;
        s.System.Cs = SegmentRegister.RealMode(0, code: true);
        vcpu.SetState(s);

        Assert.Equal(VcpuExitReason.Halted, vcpu.Run().Reason);
        Assert.True(memory.TryRead(0x2008, out ulong tscTimestamp));
        Assert.True(memory.TryRead(0x2010, out ulong systemTime));

        // At 1 GHz with no TSC write the guest TSC equals the clock: the pair must name the same instant, whatever
        // the clock did between reads (pvclock-abi.h: time = system_time + scaled(tsc - tsc_timestamp)).
        Assert.Equal(systemTime, tscTimestamp);
    }

    /// <summary>A clock whose every reading jumps further than the last (n² µs), as a preempted host thread sees it.</summary>
    private sealed class AcceleratingClock : ITimeSource
    {
        private long _reads;

        public long NowNanoseconds
        {
            get
            {
                long n = Interlocked.Increment(ref _reads);
                return n * n * 1000;
            }
        }

        public long TscFrequency => 1_000_000_000;
    }

    [Fact]
    public void Sysret_RestoringTf_TrapsRightAfterInUserMode()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Write64(GuestHarness.TssBase + 4, 0x60000); // RSP0
        g.SetGate64(1, Handler);
        g.Code64(Handler, a =>
        {
            a.mov(r13, __qword_ptr[rsp]);     // RIP
            a.mov(r14, __qword_ptr[rsp + 8]); // CS
            a.hlt();
        });
        g.Code64(UserCode, a => a.nop());
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(ecx, 0xC0000081); // STAR: SYSRET base 0x18 (CS = 0x28 | 3, SS = 0x20 | 3)
            a.mov(edx, 0x0018_0008);
            a.xor(eax, eax);
            a.wrmsr();
            a.mov(r11d, 0x102); // user RFLAGS: TF
            a.mov(rcx, UserCode);
            a.sysretq();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        CpuRegisters r = g.State.Registers;
        Assert.Equal(UserCode, r.R13);
        Assert.Equal((ulong)(GuestHarness.UserCs | 3), r.R14);
    }

    [Theory]
    [InlineData(0b10UL, 0UL, 1UL, true)]                  // APIC ID 1: sent
    [InlineData(0xFFFF_FFFFUL, 0xFFFF_FFFFUL, 0UL, false)] // first ID past the last vCPU: nothing (apic "PV IPIs")
    public void KvmHcSendIpi_Bitmap_SendsFixedIpisToPresentApicIds(ulong bitmap, ulong min, ulong expectedCount, bool delivered)
    {
        var time = new HostTimeSource();
        var bus = new ApicBus();
        using var bsp = new LocalApic(0, 0, bus, time, new HostDeviceTimerFactory(time));
        using var ap = new LocalApic(1, 1, bus, time, new HostDeviceTimerFactory(time));
        ap.Write(0xF0, BitConverter.GetBytes(0x1FFu)); // software-enable the target
        using var g = new GuestHarness([bsp, ap]);
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(eax, 10); // KVM_HC_SEND_IPI
            a.mov(rbx, bitmap);
            a.xor(ecx, ecx);
            a.mov(rdx, min);
            a.mov(esi, 0x50); // fixed, vector 0x50
            a.vmcall();
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(expectedCount, g.State.Registers.Rax);
        Assert.Equal(delivered, ap.HasInterrupt);
    }

    private const byte NmiPort = 0x80;

    /// <summary>A port whose writes raise an NMI on the test's local APIC (a guest's self-NMI IPI, in one instruction).</summary>
    private sealed class NmiTrigger(FakeLocalApic apic) : Ringvisor.Core.Bus.IBusDevice
    {
        public void Read(ulong offset, Span<byte> data) => data.Clear();

        public void Write(ulong offset, ReadOnlySpan<byte> data) => apic.RaiseNmi();
    }
}
