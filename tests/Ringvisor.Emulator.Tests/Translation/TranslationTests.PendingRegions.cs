// Regions chosen while another region of the same page waits for the background worker: they end at that region's
// entry and at its joins (where its unit will offer side entries), so the worker does not compile its code twice.
using Iced.Intel;
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Tests.Interpreter;
using Ringvisor.Emulator.Translation;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Translation;

public sealed partial class TranslationTests
{
    private const ulong PendingF = DataA;
    private const ulong PendingG = DataA + 0x100;

    [Fact]
    public void RegionChosenWhileAnotherIsQueued_EndsAtItsJoin_AndChainsToTheSideEntry()
    {
        // On one page: F = a test and a forward branch whose target L (a join) both paths reach, then RET; G = two
        // instructions and a jump to L. F gets hot first and waits in the held worker's queue; then G gets hot. G's
        // region must end at L rather than take F's code from L on a second time. Released, the worker compiles both;
        // the program runs again on them (G chaining into F's side entry at L) and ends in the interpreter's state.
        using var interp = NewHarness(translate: false);
        using var g = new GuestHarness(null, new BtOptions { CollectStats = true, TranslationThreshold = 20, BackgroundTranslation = true });
        var cache = TranslationCaches.For(g.Host);
        var worker = cache.Background ??= new BackgroundTranslator(cache, g.Host.Stats, collectStats: true);
        worker.Hold();
        ulong l = 0;
        foreach (var h in new[] { interp, g })
        {
            h.SetupLongMode();
            h.Code64(GuestHarness.CodeBase, PendingRegionsProgram);
            h.Code64(PendingF, a =>
            {
                var join = a.CreateLabel();
                a.test(edi, 1);
                a.jz(join);
                a.add(esi, 1);
                a.Label(ref join);
                a.add(esi, 2);
                a.ret();
            });
            l = JoinOffset(h, PendingF);
            h.Code64(PendingG, a =>
            {
                a.add(ebx, 1);
                a.mov(ecx, 3);
                a.jmp(l);
            });
            Assert.Equal(VcpuExitReason.Halted, h.Run().Reason);
        }

        // Nothing compiled while held: the first run was interpreted throughout.
        Assert.Equal(0, g.Host.Stats.UnitsTranslated);
        worker.Release();
        ulong phys = PendingF >> 12;
        TranslatedUnit? Unit(ulong at) =>
            cache.Units.FirstOrDefault(u => u.Key.PhysPage == phys && u.Key.EntryOffset == (int)(at & 0xFFF) && u.EntryIndex == 0);
        Assert.True(SpinWait.SpinUntil(() => worker.Queued == 0 && Unit(PendingF) is not null && Unit(PendingG) is not null, 30_000), g.Host.Stats.Format());
        Assert.Equal(5, Unit(PendingF)!.InstructionCount);
        Assert.Contains((int)(l & 0xFFF), Unit(PendingF)!.SideEntries!);
        Assert.Equal(3, Unit(PendingG)!.InstructionCount);

        // Again, on the compiled units.
        long before = g.Host.Stats.TranslatedInstructions;
        foreach (var h in new[] { interp, g })
        {
            h.SetupLongMode();
            Assert.Equal(VcpuExitReason.Halted, h.Run().Reason);
        }

        AssertSameState(interp.State, g.State);
        Assert.True(g.Host.Stats.TranslatedInstructions > before, "the second run ran nothing translated");
    }

    /// <summary>The target of F's JZ (its second instruction), decoded from guest memory.</summary>
    private static ulong JoinOffset(GuestHarness h, ulong f)
    {
        var bytes = new byte[32];
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)(h.Read64(f + (ulong)i) & 0xFF);
        }

        var decoder = Decoder.Create(64, new ByteArrayCodeReader(bytes), f);
        decoder.Decode(out _);
        decoder.Decode(out var jz);
        Assert.Equal(Mnemonic.Je, jz.Mnemonic);
        return jz.NearBranchTarget;
    }

    /// <summary>Two passes of: F called 40 times, then G 40 times (each past the threshold of 20 in the first pass).</summary>
    private static void PendingRegionsProgram(Assembler a)
    {
        var pass = a.CreateLabel();
        a.mov(r8d, 2);
        a.Label(ref pass);
        EmitCallLoop(a, edi, PendingF, 40);
        EmitCallLoop(a, edi, PendingG, 40);
        a.dec(r8d);
        a.jnz(pass);
        a.hlt();
    }

    /// <summary>Calls <paramref name="target"/> through RAX <paramref name="times"/> times, counting in
    /// <paramref name="counter"/>.</summary>
    private static void EmitCallLoop(Assembler a, AssemblerRegister32 counter, ulong target, int times)
    {
        var loop = a.CreateLabel();
        a.mov(counter, times);
        a.Label(ref loop);
        a.mov(eax, (uint)target);
        a.call(rax);
        a.dec(counter);
        a.jnz(loop);
    }
}
