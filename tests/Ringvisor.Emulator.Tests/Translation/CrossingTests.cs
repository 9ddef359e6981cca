// A hot loop whose instruction straddles a 4 KiB page boundary: the unit on the first page takes the page-crossing
// instruction (UnitCompiler.EmitCrossingGuard) and must keep following the second page: remapped, rewritten by a store,
// unmapped (#PF on the fetch, CR2 in the second page). The interpreter is the reference.
using Iced.Intel;
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Tests.Interpreter;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Translation;

public sealed class CrossingTests
{
    private const ulong Loop = 0x5F_FFF0;        // last bytes of the 2 MiB page at PD index 2
    private const ulong SecondPage = 0x60_0000;  // PD index 3: the page the crossing instruction continues on
    private const ulong OtherCopy = 0x80_0000;   // physical page PD index 3 is remapped to
    private const ulong Dispatch = GuestHarness.CodeBase + 0x400;
    private const ulong Handler = GuestHarness.CodeBase + 0x800;
    private const int FirstPhase = 1000;

    [Fact]
    public void CrossingInstructionInLoop_RemappedRewrittenUnmapped_MatchesInterpreter()
    {
        var interp = Run(translate: false, out long interpCount, out _);
        var trans = Run(translate: true, out long transCount, out var stats);
        Assert.Equal(
            new[] { interp.Registers.Rbx, interp.Registers.R8, interp.Registers.R14, interp.Registers.R15, interp.Registers.Rip },
            new[] { trans.Registers.Rbx, trans.Registers.R8, trans.Registers.R14, trans.Registers.R15, trans.Registers.Rip });
        Assert.Equal(interp.System.Cr2, trans.System.Cr2);
        Assert.Equal(SecondPage, trans.System.Cr2);
        Assert.Equal(4u, trans.Registers.R8);
        Assert.Equal(interpCount, transCount);

        // Without the crossing instruction in the unit, each of the first phase's iterations interprets it.
        long interpreted = transCount - stats.TranslatedInstructions;
        Assert.True(interpreted < FirstPhase / 2, $"{interpreted} instructions interpreted: the crossing instruction did not run translated");
    }

    private static CpuState Run(bool translate, out long instructions, out BtStats stats)
    {
        using var g = new GuestHarness(null, new BtOptions
        {
            CollectStats = true,
            Translation = translate,
            TranslationThreshold = 16,
            BackgroundTranslation = false,
        });
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.xor(ebx, ebx);
            a.xor(r8d, r8d);
            a.mov(ecx, FirstPhase);
            a.mov(rax, Loop);
            a.jmp(rax);
        });

        // Phases: 1000 iterations; remap the second page to another copy (other immediate); rewrite an immediate
        // byte there with a store; unmap it (the crossing fetch faults).
        g.Code64(Dispatch, a =>
        {
            var p2 = a.CreateLabel();
            var p3 = a.CreateLabel();
            var again = a.CreateLabel();
            a.inc(r8d);
            a.cmp(r8d, 1);
            a.jne(p2);
            a.mov(rax, OtherCopy | 0x87);
            a.mov(__qword_ptr[GuestHarness.Pd + 3 * 8], rax);
            a.invlpg(__[SecondPage]);
            a.jmp(again);
            a.Label(ref p2);
            a.cmp(r8d, 2);
            a.jne(p3);
            a.mov(__byte_ptr[SecondPage], 0x44);
            a.jmp(again);
            a.Label(ref p3);
            a.xor(eax, eax);
            a.mov(__qword_ptr[GuestHarness.Pd + 3 * 8], rax);
            a.invlpg(__[SecondPage]);
            a.inc(r8d);
            a.Label(ref again);
            a.mov(ecx, 50);
            a.mov(rax, Loop);
            a.jmp(rax);
        });
        g.Code64(Handler, a =>
        {
            a.mov(r15, __qword_ptr[rsp + 8]);   // faulting RIP
            a.mov(r14, cr2);
            a.hlt();
        });
        g.SetGate64(14, Handler);

        // The loop, assembled twice with different immediates for the crossing MOV (its opcode and first immediate
        // byte on the first page, the rest on the second): the second page's bytes go to both physical copies.
        byte[] A(uint imm) => GuestHarness.Assemble(64, Loop, a =>
        {
            var top = a.CreateLabel();
            a.Label(ref top);
            a.add(ebx, ecx);
            for (int i = 0; i < 12; i++)
            {
                a.nop();
            }

            a.mov(eax, imm);                    // 0x5FFFFE .. 0x600002
            a.add(ebx, eax);
            a.dec(ecx);
            a.jnz(top);
            a.mov(rax, Dispatch);
            a.jmp(rax);
        });
        var first = A(0x1111_1111);
        var second = A(0x2222_2222);
        int split = (int)(SecondPage - Loop);
        Assert.Equal(0xB8, first[split - 2]);
        g.Write(Loop, first.AsSpan(0, split));
        g.Write(SecondPage, first.AsSpan(split));
        g.Write(OtherCopy, second.AsSpan(split));

        var exit = g.Run();
        Assert.Equal(VcpuExitReason.Halted, exit.Reason);
        instructions = g.Vcpu.InstructionsExecuted;
        stats = g.Host.Stats;
        return g.State;
    }
}
