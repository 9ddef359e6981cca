// The vCPU run loop: HLT parking and wake-up by an interrupt, Kick of a spinning guest, hypercalls.
using Ringvisor.Core.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Interpreter;

public sealed class RunLoopTests
{
    private const ulong Handler = 0x30000;

    [Fact]
    public void Hlt_WithInterruptsEnabled_WakesOnInterruptAndRunsHandler()
    {
        var apic = new FakeLocalApic();
        using var g = new GuestHarness([apic]);
        g.SetupLongMode();
        g.SetGate64(0x30, Handler);
        g.Code64(Handler, a =>
        {
            a.add(rbx, 1);
            a.iretq();
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.xor(ebx, ebx);
            a.sti();
            a.hlt();
            a.cli();
            a.hlt();
        });

        var raiser = new Thread(() =>
        {
            Thread.Sleep(50);
            apic.Raise(0x30);
        });
        raiser.Start();
        var exit = g.Run();
        raiser.Join();

        Assert.Equal(VcpuExitReason.Halted, exit.Reason);
        Assert.Equal(1UL, g.State.Registers.Rbx);
        Assert.Equal(1, apic.Acknowledged);
    }

    [Fact]
    public void Interrupt_AfterSti_IsDeliveredOnlyAfterTheShadowInstruction()
    {
        var apic = new FakeLocalApic();
        using var g = new GuestHarness([apic]);
        g.SetupLongMode();
        g.SetGate64(0x30, Handler);
        // The handler records RCX: STI's shadow lets "mov ecx, 1" complete before the interrupt.
        g.Code64(Handler, a =>
        {
            a.mov(rdx, rcx);
            a.iretq();
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.xor(ecx, ecx);
            a.sti();
            a.mov(ecx, 1);
            a.mov(ecx, 2);
            a.cli();
            a.hlt();
        });
        apic.Raise(0x30);

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(1UL, g.State.Registers.Rdx);
    }

    [Fact]
    public void Kick_SpinningGuest_ReturnsKicked()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            var top = a.CreateLabel();
            a.Label(ref top);
            a.inc(rax);
            a.jmp(top);
        });

        var kicker = new Thread(() =>
        {
            Thread.Sleep(100);
            g.Vcpu.Kick();
        });
        kicker.Start();
        var exit = g.Run();
        kicker.Join();

        Assert.Equal(VcpuExitReason.Kicked, exit.Reason);
        Assert.True(g.State.Registers.Rax > 0);
    }

    [Fact]
    public void Hypercalls_ConsoleWriteThenExit_ReachSinkAndPowerOff()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Write(0x20000, "hello"u8);
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(eax, (uint)Instructions.Cpu.HypercallConsoleWrite);
            a.mov(ebx, 0x20000);
            a.mov(ecx, 5);
            a.vmcall();
            a.mov(r15, rax);
            a.mov(eax, 12345);
            a.vmcall();               // unknown: -KVM_ENOSYS
            a.mov(r14, rax);
            a.mov(eax, (uint)Instructions.Cpu.HypercallExit);
            a.mov(ebx, 7);
            a.vmcall();
            a.hlt();
        });

        var exit = g.Run();

        Assert.Equal(VcpuExitReason.PowerOff, exit.Reason);
        Assert.Equal(7, exit.Status);
        Assert.Equal("hello"u8.ToArray(), g.Console.ToArray());
        Assert.Equal(5UL, g.State.Registers.R15);
        Assert.Equal(unchecked((ulong)-1000L), g.State.Registers.R14);
    }

    [Fact]
    public void SelfModifyingCode_PatchedImmediate_IsExecuted()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            var patch = a.CreateLabel();
            var done = a.CreateLabel();
            a.xor(ecx, ecx);
            a.Label(ref patch);
            a.mov(al, 0x11);
            a.inc(ecx);
            a.cmp(ecx, 2);
            a.je(done);
            a.lea(rbx, __byte_ptr[patch]);
            a.mov(__byte_ptr[rbx + 1], 0x42);
            a.jmp(patch);
            a.Label(ref done);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(0x42UL, g.State.Registers.Rax & 0xFF);
    }

    [Fact]
    public void RepMovsb_FaultMidway_LeavesRegistersAtCompletedIterations()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Write64(GuestHarness.Pd + 16, 0); // 0x400000.. not present
        g.SetGate64(14, Handler);
        g.Code64(Handler, a =>
        {
            a.mov(r8, 0x40000UL);
            a.mov(rax, __qword_ptr[rsp]);
            a.mov(__qword_ptr[r8], rax);
            a.mov(rax, __qword_ptr[rsp + 8]);
            a.mov(__qword_ptr[r8 + 8], rax);
            a.hlt();
        });
        g.Write(0x3FF000, Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray());
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(ecx, 0x2000);
            a.mov(esi, 0x3FF000);
            a.mov(edi, 0x100000);
            a.rep.movsb();
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        var r = g.State.Registers;
        Assert.Equal(0x1000UL, r.Rcx);
        Assert.Equal(0x400000UL, r.Rsi);
        Assert.Equal(0x101000UL, r.Rdi);
        Assert.Equal(0UL, g.Read64(0x40000));                       // error code: read, not present
        Assert.Equal(GuestHarness.CodeBase + 15, g.Read64(0x40008)); // RIP of REP MOVSB
        Assert.Equal(0x400000UL, g.State.System.Cr2);
        Assert.True(g.Memory.TryRead(0x100FFF, out byte last));
        Assert.Equal(0xFF, last);
    }

    [Fact]
    public void RepStosq_LargeCount_FillsMemory()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(ecx, 0x10000);
            a.mov(edi, 0x200000);
            a.mov(rax, 0x1122334455667788UL);
            a.rep.stosq();
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(0x1122334455667788UL, g.Read64(0x200000));
        Assert.Equal(0x1122334455667788UL, g.Read64(0x27FFF8));
        Assert.Equal(0UL, g.Read64(0x280000));
        Assert.Equal(0x280000UL, g.State.Registers.Rdi);
        Assert.Equal(0UL, g.State.Registers.Rcx);
    }
}
