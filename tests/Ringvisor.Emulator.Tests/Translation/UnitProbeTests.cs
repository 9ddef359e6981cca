// Where the interpreter probes for a translated unit (Cpu.FindUnit, which also counts heat towards the threshold):
// at block leaders only. A fast-path instruction that falls through leaves the next one unprobed; a branch, an
// instruction the fast path does not handle, a fault or an interrupt makes the next one a leader.
using Iced.Intel;
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Tests.Interpreter;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Translation;

public sealed class UnitProbeTests
{
    private const int Iterations = 200;
    private const int RunLength = 20;

    [Fact]
    public void StraightRun_ProbedOncePerPass()
    {
        // A loop of 20 register ADDs, DEC, JNZ: one block, entered at its head on every pass.
        var stats = RunInterpreted(a => EmitLoop(a, withGeneric: false));
        long interpreted = stats.Instructions - stats.TranslatedInstructions;
        Assert.True(interpreted > Iterations * RunLength, stats.Format());

        // The head of each pass and the HLT after the loop, plus the batch starts.
        Assert.InRange(stats.UnitProbes, Iterations, Iterations + 16);
    }

    [Fact]
    public void InstructionAfterAGenericOne_IsProbed()
    {
        // The same loop with ADD, CMC at its head (CMC has no fast form: the interpreter's generic path), so the ADD
        // after the CMC starts a block of its own: two probes per pass.
        var stats = RunInterpreted(a => EmitLoop(a, withGeneric: true));
        Assert.InRange(stats.UnitProbes, 2 * Iterations, (2 * Iterations) + 16);
    }

    [Fact]
    public void HandlerOfAFastPathFault_IsProbed()
    {
        // A fast-path load (MOV r32, [rbx]) from an unmapped address on every pass: its #PF handler skips the 2-byte
        // load and returns. The handler's first instruction follows a fault and the instruction after the IRETQ
        // follows a generic one: with the loop head, three leaders per pass.
        const ulong Handler = GuestHarness.CodeBase + 0x800;
        const ulong Unmapped = 0x4000_0000; // beyond the harness's identity map
        var stats = RunInterpreted(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(ecx, Iterations);
                a.mov(rbx, Unmapped);
                a.Label(ref loop);
                a.mov(eax, __dword_ptr[rbx]);
                for (int i = 0; i < RunLength; i++)
                {
                    a.add(eax, i);
                }

                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g =>
            {
                g.Code64(Handler, a =>
                {
                    a.add(__qword_ptr[rsp + 8], 2); // the return RIP, past the error code
                    a.add(rsp, 8);
                    a.iretq();
                });
                g.SetGate64(14, Handler);
            });
        Assert.InRange(stats.UnitProbes, 3 * Iterations, (3 * Iterations) + 16);
    }

    private static void EmitLoop(Assembler a, bool withGeneric)
    {
        var loop = a.CreateLabel();
        a.mov(ecx, Iterations);
        a.Label(ref loop);
        if (withGeneric)
        {
            a.add(ebx, 1);
            a.cmc();
        }

        for (int i = 0; i < RunLength; i++)
        {
            a.add(eax, i);
        }

        a.dec(ecx);
        a.jnz(loop);
        a.hlt();
    }

    /// <summary>Translation on but never reached (the threshold is far above the loop's count): every instruction is
    /// interpreted and every probe is counted.</summary>
    private static BtStats RunInterpreted(Action<Assembler> program, Action<GuestHarness>? setup = null)
    {
        using var g = new GuestHarness(null, new BtOptions
        {
            CollectStats = true,
            Translation = true,
            TranslationThreshold = 1_000_000,
            BackgroundTranslation = false,
        });
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, program);
        setup?.Invoke(g);
        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(0, g.Host.Stats.TranslatedInstructions);
        return g.Host.Stats;
    }
}
