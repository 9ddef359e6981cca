// Exception delivery in long mode (SDM Vol. 3A §6.14): error codes, CR2, IST, privilege changes, #DF, triple fault.
using Iced.Intel;
using Ringvisor.Core.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Interpreter;

public sealed class ExceptionDeliveryTests
{
    private const ulong Handler = 0x30000;

    /// <summary>A handler that stores the error code (top of stack) and its RIP/CS into 0x40000.. then halts.</summary>
    internal static void ErrorCodeHandler(Assembler a)
    {
        a.mov(rbx, 0x40000UL);
        a.mov(rax, __qword_ptr[rsp]);
        a.mov(__qword_ptr[rbx], rax);
        a.mov(rax, __qword_ptr[rsp + 8]);
        a.mov(__qword_ptr[rbx + 8], rax);
        a.mov(rax, cr2);
        a.mov(__qword_ptr[rbx + 16], rax);
        a.mov(__qword_ptr[rbx + 24], rsp);
        a.hlt();
    }

    [Fact]
    public void PageFault_WriteToReadOnlyPage_PushesErrorCodeAndSetsCr2()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        // Map 0x200000..0x3FFFFF read-only (PD entry 1 without R/W).
        g.Write64(GuestHarness.Pd + 8, (1UL << 21) | 0x85);
        g.SetGate64(14, Handler);
        g.Code64(Handler, ErrorCodeHandler);
        ulong faultRip = 0;
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(rcx, 0x200123UL);
            a.mov(__qword_ptr[rcx], rcx);
            a.hlt();
        });
        // mov rcx, imm64 is 10 bytes: the faulting store starts right after it.
        faultRip = GuestHarness.CodeBase + 10;

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        // P=1 (protection), W=1, U=0.
        Assert.Equal(0x3UL, g.Read64(0x40000));
        Assert.Equal(faultRip, g.Read64(0x40008));
        Assert.Equal(0x200123UL, g.Read64(0x40010));
        Assert.Equal(0x200123UL, g.State.System.Cr2);
    }

    [Fact]
    public void PageFault_NotPresent_ErrorCodeHasNoPresentBit()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Write64(GuestHarness.Pd + 16, 0); // 0x400000.. not present
        g.SetGate64(14, Handler);
        g.Code64(Handler, ErrorCodeHandler);
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(rcx, 0x400008UL);
            a.mov(rax, __qword_ptr[rcx]);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(0x0UL, g.Read64(0x40000));
        Assert.Equal(0x400008UL, g.Read64(0x40010));
    }

    [Fact]
    public void GeneralProtection_BadSelectorLoad_ErrorCodeIsSelector()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.SetGate64(13, Handler);
        g.Code64(Handler, ErrorCodeHandler);
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(eax, 0x48); // past the GDT limit (0x3F)
            a.mov(ds, ax);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(0x48UL, g.Read64(0x40000));
        Assert.Equal(GuestHarness.CodeBase + 5, g.Read64(0x40008));
    }

    [Fact]
    public void DivideError_IsFaultWithoutErrorCode()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.SetGate64(0, Handler);
        g.Code64(Handler, a =>
        {
            a.mov(rbx, 0x40000UL);
            a.mov(rax, __qword_ptr[rsp]);
            a.mov(__qword_ptr[rbx], rax);
            a.hlt();
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.xor(ecx, ecx);
            a.div(rcx);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(GuestHarness.CodeBase + 2, g.Read64(0x40000));
    }

    [Fact]
    public void Int3_ThenIretq_ResumesAfterBreakpoint()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.SetGate64(3, Handler);
        g.Code64(Handler, a =>
        {
            a.add(rbx, 1);
            a.iretq();
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.xor(ebx, ebx);
            a.int3();
            a.int3();
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(2UL, g.State.Registers.Rbx);
        Assert.Equal(GuestHarness.StackTop, g.State.Registers.Rsp);
    }

    [Fact]
    public void Interrupt_WithIst_SwitchesToIstStackAligned()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Write64(GuestHarness.TssBase + 0x24, 0x70008); // IST1, deliberately misaligned by 8
        g.SetGate64(0x40, Handler, ist: 1);
        g.Code64(Handler, ErrorCodeHandler);
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.@int(0x40);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        // Frame of 5 qwords below 0x70000 (RSP aligned down to 16 first).
        Assert.Equal(0x70000UL - 40, g.Read64(0x40018));
        Assert.Equal(GuestHarness.CodeBase + 2, g.Read64(0x40000));
    }

    [Fact]
    public void NoIdt_Breakpoint_EscalatesToTripleFaultShutdown()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.int3();
            a.hlt();
        });

        var exit = g.Run();
        Assert.Equal(VcpuExitReason.Shutdown, exit.Reason);

        // Loading state again (a reset) clears the shutdown: the vCPU runs the new code.
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(eax, 5);
            a.hlt();
        });
        g.SetupLongMode();
        var second = g.Run();

        Assert.Equal(VcpuExitReason.Halted, second.Reason);
        Assert.Equal(5UL, g.State.Registers.Rax);
    }

    [Fact]
    public void PageFaultWithBadPfGate_BecomesDoubleFault()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.SetGate64(8, Handler);
        g.Code64(Handler, ErrorCodeHandler);
        // Vector 14's gate is left not present: delivering #PF raises #NP, and #PF + contributory = #DF.
        g.SetGate64(14, Handler);
        g.Write64(GuestHarness.IdtBase + 14 * 16, 0);
        g.Write64(GuestHarness.Pd + 16, 0);
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(rcx, 0x400000UL);
            a.mov(rax, __qword_ptr[rcx]);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(0UL, g.Read64(0x40000)); // #DF error code is 0
    }

    [Fact]
    public void UndefinedInstruction_RaisesUdAndIsCounted()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.SetGate64(6, Handler);
        g.Code64(Handler, a =>
        {
            a.mov(rbx, 0x40000UL);
            a.mov(rax, __qword_ptr[rsp]);
            a.mov(__qword_ptr[rbx], rax);
            a.hlt();
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.ud2();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(GuestHarness.CodeBase, g.Read64(0x40000));
        Assert.Equal(1, g.Host.Stats.ExceptionCount(6));
    }

    [Fact]
    public void IretqToUserMode_ThenSyscallAndInt_ReturnToKernelWithStackSwitch()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        const ulong userCode = 0x50000;
        const ulong syscallEntry = 0x31000;
        g.Write64(GuestHarness.TssBase + 4, 0x60000); // RSP0
        g.SetGate64(0x80, Handler, dpl: 3);
        // int 0x80 handler: record CS and SS of the frame, the new RSP, then halt.
        g.Code64(Handler, a =>
        {
            a.mov(rbx, 0x40000UL);
            a.mov(rax, __qword_ptr[rsp + 8]);
            a.mov(__qword_ptr[rbx], rax);    // user CS
            a.mov(rax, __qword_ptr[rsp + 32]);
            a.mov(__qword_ptr[rbx + 8], rax); // user SS
            a.mov(__qword_ptr[rbx + 16], rsp);
            a.mov(ax, ss);
            a.mov(__qword_ptr[rbx + 24], rax);
            a.mov(__qword_ptr[rbx + 32], r12);
            a.hlt();
        });
        // SYSCALL entry: count, then SYSRET back to user mode.
        g.Code64(syscallEntry, a =>
        {
            a.add(r12, 1);
            a.sysretq();
        });
        g.Code64(userCode, a =>
        {
            a.syscall();
            a.@int(0x80);
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            // STAR: SYSCALL CS = 0x08, SYSRET base = 0x18 (CS = 0x28 | 3, SS = 0x20 | 3).
            a.mov(ecx, 0xC0000081);
            a.mov(edx, 0x0018_0008);
            a.xor(eax, eax);
            a.wrmsr();
            a.mov(ecx, 0xC0000082);
            a.mov(eax, (uint)syscallEntry);
            a.xor(edx, edx);
            a.wrmsr();
            a.xor(r12d, r12d);
            a.push(GuestHarness.UserDs | 3);
            a.push(0x58000);
            a.push(0x202);
            a.push(GuestHarness.UserCs | 3);
            a.mov(rax, userCode);
            a.push(rax);
            a.iretq();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal((ulong)(GuestHarness.UserCs | 3), g.Read64(0x40000));
        Assert.Equal((ulong)(GuestHarness.UserDs | 3), g.Read64(0x40008));
        Assert.Equal(0x60000UL - 40, g.Read64(0x40010));
        Assert.Equal(0UL, g.Read64(0x40018) & 0xFFFC); // SS = null selector after the CPL change
        Assert.Equal(1UL, g.Read64(0x40020));           // the syscall ran once
    }

    [Fact]
    public void TrapFlag_SingleStep_RaisesDebugTrapAfterEachInstruction()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.SetGate64(1, Handler);
        g.Code64(Handler, a =>
        {
            var keep = a.CreateLabel();
            a.inc(r12);
            a.cmp(r12, 3);
            a.jne(keep);
            a.and(__qword_ptr[rsp + 16], ~0x100);
            a.Label(ref keep);
            a.iretq();
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.xor(r12d, r12d);
            a.pushfq();
            a.or(__qword_ptr[rsp], 0x100);
            a.popfq();
            a.nop();
            a.nop();
            a.nop();
            a.nop();
            a.nop();
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(3UL, g.State.Registers.R12);
    }

    [Theory]
    [InlineData(true, 12)]
    [InlineData(false, 13)]
    public void NonCanonicalAccess_ThroughStackOrData_RaisesSsOrGp(bool viaStack, int expectedVector)
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Write64(GuestHarness.TssBase + 0x24, 0x70000); // IST1: the faulting RSP is unusable
        g.SetGate64(12, Handler, ist: 1);
        g.SetGate64(13, Handler + 0x100, ist: 1);
        g.Code64(Handler, a =>
        {
            a.mov(r9, 12UL);
            a.hlt();
        });
        g.Code64(Handler + 0x100, a =>
        {
            a.mov(r9, 13UL);
            a.hlt();
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(rbx, 0x8000_0000_0008UL);
            if (viaStack)
            {
                a.mov(rsp, rbx);
                a.push(rax);
            }
            else
            {
                a.mov(rax, __qword_ptr[rbx]);
            }

            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal((ulong)expectedVector, g.State.Registers.R9);
    }
}
