// Integer instruction semantics against results derived by hand from the SDM (flags included).
using Iced.Intel;
using Ringvisor.Core.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Interpreter;

public sealed class InterpAluTests
{
    private const ulong AllArith = 0x8D5; // CF PF AF ZF SF OF
    private const ulong NoAf = 0x8C5;
    private const ulong CfOf = 0x801;

    private static readonly Dictionary<string, Action<Assembler>> s_ops = new()
    {
        ["add"] = a => a.add(rax, rbx),
        ["sub"] = a => a.sub(rax, rbx),
        ["sub32"] = a => a.sub(eax, ebx),
        ["and32"] = a => a.and(eax, ebx),
        ["xor"] = a => a.xor(rax, rbx),
        ["inc8"] = a => a.inc(al),
        ["dec16"] = a => a.dec(ax),
        ["neg"] = a => a.neg(rax),
        ["shl1"] = a => a.shl(rax, 1),
        ["shr32_1"] = a => a.shr(eax, 1),
        ["sar8_1"] = a => a.sar(al, 1),
        ["rol8_1"] = a => a.rol(al, 1),
        ["stc_adc"] = a => { a.stc(); a.adc(rax, rbx); },
        ["stc_sbb"] = a => { a.stc(); a.sbb(rax, rbx); },
        ["imul2"] = a => a.imul(rax, rbx),
        ["imul32"] = a => a.imul(eax, ebx),
        ["imul3"] = a => a.imul(rax, rbx, -3),
        ["imul_mem"] = a => { a.mov(__qword_ptr[0x20000], rbx); a.imul(rax, __qword_ptr[0x20000]); },
        ["mul"] = a => a.mul(rbx),
        ["bsf"] = a => a.bsf(rax, rbx),
        ["bt"] = a => a.bt(rax, rbx),
        ["popcnt"] = a => a.popcnt(rax, rbx),
        ["cmp8"] = a => a.cmp(al, bl),
        ["shld"] = a => a.shld(rax, rbx, 4),
        ["rcr8_1"] = a => { a.stc(); a.rcr(al, 1); },
        ["div"] = a => { a.xor(edx, edx); a.div(rbx); },
        ["idiv32"] = a => { a.cdq(); a.idiv(ebx); },
        ["bswap32"] = a => a.bswap(eax),
        ["movsx"] = a => a.movsx(rax, bl),
        ["cmovz"] = a => { a.cmp(rbx, rbx); a.cmove(rax, rbx); },
        ["setc"] = a => { a.stc(); a.setb(al); },
        ["xadd"] = a => a.xadd(rax, rbx),
        ["cmp_setl"] = a => { a.cmp(eax, ebx); a.setl(al); a.movzx(eax, al); },
        ["cmp_setb"] = a => { a.cmp(eax, ebx); a.setb(al); a.movzx(eax, al); },
        ["cmp_setle8"] = a => { a.cmp(al, bl); a.setle(al); a.movzx(eax, al); },
        ["cmp_seta16"] = a => { a.cmp(ax, bx); a.seta(al); a.movzx(eax, al); },
        ["test_setg"] = a => { a.test(rax, rbx); a.setg(al); a.movzx(eax, al); },
        ["test_sets"] = a => { a.test(eax, ebx); a.sets(al); a.movzx(eax, al); },
    };

    [Theory]
    [InlineData("add", 0x7FFF_FFFF_FFFF_FFFFUL, 1UL, 0x8000_0000_0000_0000UL, 0x894UL, AllArith)]
    [InlineData("add", 0xFFFF_FFFF_FFFF_FFFFUL, 1UL, 0UL, 0x55UL, AllArith)]
    [InlineData("sub", 0UL, 1UL, 0xFFFF_FFFF_FFFF_FFFFUL, 0x95UL, AllArith)]
    [InlineData("sub", 5UL, 5UL, 0UL, 0x44UL, AllArith)]
    [InlineData("sub32", 0x1_0000_0000UL, 1UL, 0xFFFF_FFFFUL, 0x95UL, AllArith)]
    [InlineData("and32", 0xFFFF_FFFF_0000_F0F0UL, 0x0FF0UL, 0xF0UL, 0x04UL, AllArith)]
    [InlineData("xor", 123UL, 123UL, 0UL, 0x44UL, AllArith)]
    [InlineData("inc8", 0x1234_567FUL, 0UL, 0x1234_5680UL, 0x890UL, AllArith)]
    [InlineData("dec16", 0x8000UL, 0UL, 0x7FFFUL, 0x814UL, AllArith)]
    [InlineData("neg", 5UL, 0UL, 0xFFFF_FFFF_FFFF_FFFBUL, 0x91UL, AllArith)]
    [InlineData("shl1", 0x8000_0000_0000_0001UL, 0UL, 2UL, 0x801UL, NoAf)]
    [InlineData("shr32_1", 0x8000_0001UL, 0UL, 0x4000_0000UL, 0x805UL, NoAf)]
    [InlineData("sar8_1", 0x81UL, 0UL, 0xC0UL, 0x85UL, NoAf & ~0x800UL)]
    [InlineData("rol8_1", 0x81UL, 0UL, 0x03UL, 0x801UL, CfOf)]
    [InlineData("stc_adc", 1UL, 1UL, 3UL, 0x04UL, AllArith)]
    [InlineData("stc_sbb", 0UL, 0UL, 0xFFFF_FFFF_FFFF_FFFFUL, 0x95UL, AllArith)]
    [InlineData("imul2", 0x1_0000_0000UL, 0x1_0000_0000UL, 0UL, 0x801UL, CfOf)]
    [InlineData("imul32", 0xFFFF_FFFF_0001_0000UL, 0x0001_0000UL, 0UL, 0x801UL, CfOf)]       // 2^32 overflows 32 bits
    [InlineData("imul32", 0x1234_5678_FFFF_FFFEUL, 3UL, 0xFFFF_FFFAUL, 0UL, CfOf)]          // -2 * 3 = -6, fits
    [InlineData("imul3", 0UL, 5UL, 0xFFFF_FFFF_FFFF_FFF1UL, 0UL, CfOf)]                   // 5 * -3
    [InlineData("imul_mem", 7UL, 6UL, 42UL, 0UL, CfOf)]
    [InlineData("mul", 0xFFFF_FFFF_FFFF_FFFFUL, 2UL, 0xFFFF_FFFF_FFFF_FFFEUL, 0x801UL, CfOf)]
    [InlineData("bsf", 0UL, 0x80UL, 7UL, 0UL, 0x40UL)]
    [InlineData("bt", 8UL, 3UL, 8UL, 1UL, 1UL)]
    [InlineData("popcnt", 0UL, 0xF0F0UL, 8UL, 0UL, AllArith)]
    [InlineData("cmp8", 0x80UL, 0x01UL, 0x80UL, 0x810UL, AllArith)]
    [InlineData("shld", 0x0123_4567_89AB_CDEFUL, 0xF000_0000_0000_0000UL, 0x1234_5678_9ABC_DEFFUL, 0x4UL, NoAf & ~0x800UL)]
    [InlineData("rcr8_1", 0x02UL, 0UL, 0x81UL, 0x800UL, CfOf)]
    [InlineData("div", 100UL, 7UL, 14UL, 0UL, 0UL)]
    [InlineData("idiv32", 0xFFFF_FFF9UL, 2UL, 0xFFFF_FFFDUL, 0UL, 0UL)]
    [InlineData("bswap32", 0xAAAA_BBBB_1122_3344UL, 0UL, 0x4433_2211UL, 0UL, 0UL)]
    [InlineData("movsx", 0UL, 0x80UL, 0xFFFF_FFFF_FFFF_FF80UL, 0UL, 0UL)]
    [InlineData("cmovz", 1UL, 2UL, 2UL, 0x44UL, AllArith)]
    [InlineData("setc", 0xFF00UL, 0UL, 0xFF01UL, 1UL, 1UL)]
    [InlineData("xadd", 5UL, 7UL, 12UL, 0x04UL, AllArith)]
    [InlineData("cmp_setl", 0xFFFF_FFFFUL, 1UL, 1UL, 0UL, 0UL)]            // -1 < 1 signed
    [InlineData("cmp_setb", 0xFFFF_FFFFUL, 1UL, 0UL, 0UL, 0UL)]            // 0xFFFFFFFF > 1 unsigned
    [InlineData("cmp_setle8", 0x7FUL, 0x80UL, 0UL, 0UL, 0UL)]              // 127 > -128 signed
    [InlineData("cmp_seta16", 0x8000UL, 0x7FFFUL, 1UL, 0UL, 0UL)]          // 0x8000 > 0x7FFF unsigned
    [InlineData("test_setg", 0x8000_0000_0000_0001UL, 0x8000_0000_0000_0001UL, 0UL, 0UL, 0UL)] // SF=1, ZF=0 → not greater
    [InlineData("test_sets", 0x8000_0000UL, 0xFFFF_FFFFUL, 1UL, 0UL, 0UL)]
    public void Execute_IntegerInstruction_MatchesSdm(string op, ulong a, ulong b, ulong expected, ulong expectedFlags, ulong flagMask)
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, asm =>
        {
            asm.mov(rax, a);
            asm.mov(rbx, b);
            s_ops[op](asm);
            asm.pushfq();
            asm.pop(rcx);
            asm.hlt();
        });

        var exit = g.Run();

        Assert.Equal(VcpuExitReason.Halted, exit.Reason);
        var r = g.State.Registers;
        Assert.Equal(expected, r.Rax);
        Assert.Equal(expectedFlags & flagMask, r.Rcx & flagMask);
    }

    [Fact]
    public void Execute_LockedAddToMemory_IsAtomicAndSetsFlags()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Write64(0x20000, 0xFFFF_FFFF_FFFF_FFFF);
        g.Code64(GuestHarness.CodeBase, asm =>
        {
            asm.mov(rbx, 0x20000UL);
            asm.@lock.add(__qword_ptr[rbx], 1);
            asm.pushfq();
            asm.pop(rcx);
            asm.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(0UL, g.Read64(0x20000));
        Assert.Equal(0x55UL, g.State.Registers.Rcx & AllArith);
    }

    [Fact]
    public void Execute_Cmpxchg_SuccessAndFailure_UpdateMemoryAndAccumulator()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Write64(0x20000, 10);
        g.Code64(GuestHarness.CodeBase, asm =>
        {
            asm.mov(rbx, 0x20000UL);
            asm.mov(eax, 10);
            asm.mov(ecx, 20);
            asm.@lock.cmpxchg(__qword_ptr[rbx], rcx); // succeeds: [rbx] = 20
            asm.mov(eax, 99);
            asm.@lock.cmpxchg(__qword_ptr[rbx], rcx); // fails: rax = 20
            asm.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(20UL, g.Read64(0x20000));
        Assert.Equal(20UL, g.State.Registers.Rax);
    }

    [Fact]
    public void Execute_PushPopCallRet_RoundTrip()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, asm =>
        {
            var fn = asm.CreateLabel();
            asm.mov(rax, 1UL);
            asm.call(fn);
            asm.add(rax, 100);
            asm.hlt();
            asm.Label(ref fn);
            asm.push(rax);
            asm.pop(rbx);
            asm.lea(rax, __qword_ptr[rbx + rbx * 4 + 2]);
            asm.ret();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(107UL, g.State.Registers.Rax);
        Assert.Equal(GuestHarness.StackTop, g.State.Registers.Rsp);
    }

    [Fact]
    public void Execute_LoopWithJcc_CountsDown()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, asm =>
        {
            var top = asm.CreateLabel();
            asm.mov(ecx, 1000);
            asm.xor(eax, eax);
            asm.Label(ref top);
            asm.add(eax, ecx);
            asm.dec(ecx);
            asm.jnz(top);
            asm.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(500_500UL, g.State.Registers.Rax);
    }
}
