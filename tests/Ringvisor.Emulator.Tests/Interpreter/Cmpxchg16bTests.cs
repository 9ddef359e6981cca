// CMPXCHG16B (SDM Vol. 2A CMPXCHG8B/CMPXCHG16B): the compare, both outcomes, the alignment #GP and the write cycle that
// makes a read-only operand fault even when the comparison fails; CPUID advertises it (CX16).
using Iced.Intel;
using Ringvisor.Core.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Interpreter;

public class Cmpxchg16bTests
{
    private const ulong Handler = 0x30000;
    private const ulong Operand = 0x20010;

    [Fact]
    public void Equal_StoresRcxRbxAndSetsZf()
    {
        using var g = RunOnOperand(0x1111_2222_3333_4444, 0x5555_6666_7777_8888, 0xAAAA_BBBB_CCCC_DDDD, 0xEEEE_FFFF_0000_1111, locked: true);

        Assert.Equal(0xAAAA_BBBB_CCCC_DDDDUL, g.Read64(Operand));
        Assert.Equal(0xEEEE_FFFF_0000_1111UL, g.Read64(Operand + 8));
        var r = g.State.Registers;
        Assert.Equal(0x1111_2222_3333_4444UL, r.Rax);
        Assert.Equal(0x5555_6666_7777_8888UL, r.Rdx);
        Assert.NotEqual(0UL, r.Rflags & 0x40); // ZF
        Assert.NotEqual(0UL, r.Rflags & 0x1);  // CF untouched (set by STC)
    }

    [Theory]
    [InlineData(0x1111_2222_3333_4444UL, 0x0UL)] // high halves differ
    [InlineData(0x0UL, 0x5555_6666_7777_8888UL)] // low halves differ
    public void NotEqual_LoadsRdxRaxAndClearsZf(ulong low, ulong high)
    {
        using var g = RunOnOperand(low, high, 1, 2, locked: false);

        Assert.Equal(0x1111_2222_3333_4444UL, g.Read64(Operand));
        Assert.Equal(0x5555_6666_7777_8888UL, g.Read64(Operand + 8));
        var r = g.State.Registers;
        Assert.Equal(0x1111_2222_3333_4444UL, r.Rax);
        Assert.Equal(0x5555_6666_7777_8888UL, r.Rdx);
        Assert.Equal(0UL, r.Rflags & 0x40);
    }

    /// <summary>Runs CMPXCHG16B on the aligned operand holding 0x5555666677778888_1111222233334444, with RDX:RAX =
    /// <paramref name="high"/>:<paramref name="low"/>, RCX:RBX as given, ZF and CF set before; halted after it.</summary>
    private static GuestHarness RunOnOperand(ulong low, ulong high, ulong rbxValue, ulong rcxValue, bool locked)
    {
        var g = new GuestHarness();
        g.SetupLongMode();
        g.Write64(Operand, 0x1111_2222_3333_4444);
        g.Write64(Operand + 8, 0x5555_6666_7777_8888);
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(rsi, Operand);
            a.mov(rax, low);
            a.mov(rdx, high);
            a.mov(rbx, rbxValue);
            a.mov(rcx, rcxValue);
            a.xor(edi, edi); // ZF = 1, CF = 0 before
            a.stc();
            if (locked)
            {
                a.@lock.cmpxchg16b(__xmmword_ptr[rsi]);
            }
            else
            {
                a.cmpxchg16b(__xmmword_ptr[rsi]);
            }

            a.hlt();
        });

        var exit = g.Run().Reason;
        if (exit != VcpuExitReason.Halted)
        {
            g.Dispose();
        }

        Assert.Equal(VcpuExitReason.Halted, exit);
        return g;
    }

    [Fact]
    public void Misaligned_RaisesGpWithoutTouchingMemory()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.SetGate64(13, Handler);
        g.Code64(Handler, ExceptionDeliveryTests.ErrorCodeHandler); // error code at 0x40000, RIP at 0x40008
        g.Write64(Operand + 8, 7);
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(rsi, Operand + 8); // 8-byte aligned only
            a.mov(rax, 7UL);
            a.xor(edx, edx);
            a.mov(rbx, 9UL);
            a.xor(ecx, ecx);
            a.@lock.cmpxchg16b(__xmmword_ptr[rsi]);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(0UL, g.Read64(0x40000)); // #GP(0)
        Assert.Equal(GuestHarness.CodeBase + 10 + 10 + 2 + 10 + 2, g.Read64(0x40008));
        Assert.Equal(7UL, g.Read64(Operand + 8));
    }

    [Fact]
    public void ReadOnlyOperand_FaultsEvenWhenTheComparisonFails()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        // 0x200000..0x3FFFFF read-only (PD entry 1 without R/W).
        g.Write64(GuestHarness.Pd + 8, (1UL << 21) | 0x85);
        g.SetGate64(14, Handler);
        g.Code64(Handler, ExceptionDeliveryTests.ErrorCodeHandler); // error code at 0x40000, RIP at 0x40008
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(rsi, 0x200100UL);
            a.mov(rax, 0x1234UL); // memory holds zeros: the comparison fails
            a.mov(rdx, 0x5678UL);
            a.@lock.cmpxchg16b(__xmmword_ptr[rsi]);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(0x3UL, g.Read64(0x40000)); // #PF, present + write
        Assert.Equal(GuestHarness.CodeBase + 30, g.Read64(0x40008));
        Assert.Equal(0x5678UL, g.State.Registers.Rdx); // RDX:RAX not loaded (the handler uses RAX)
    }

    [Fact]
    public void Cpuid_AdvertisesCx16()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(eax, 1);
            a.xor(ecx, ecx);
            a.cpuid();
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.NotEqual(0UL, g.State.Registers.Rcx & (1UL << 13));
    }
}
