// BtOptions.VerifyUnits (RINGVISOR_BT_VERIFY=1): a translated unit whose code bytes changed without the translator
// hearing of it (a missed invalidation) is caught before it runs, and reported with the unit's name.
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Tests.Interpreter;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Translation;

public sealed class VerifyUnitsTests
{
    private const ulong Callee = 0x60_0000;
    private const ushort Port = 0xF0;
    private const int Calls = 10;

    [Fact]
    public void CodeRewrittenUnreported_StopsBeforeTheStaleUnitRuns()
    {
        // The VMM rewrites the callee's immediate straight in RAM and tells no one (what a lost code-page notification
        // looks like): its unit stays live in the cache, and the next call would run the old immediate.
        using var g = NewGuest(report: false);
        var exit = g.Run();
        Assert.Equal(VcpuExitReason.Error, exit.Reason);
        Assert.Contains($"unit bt_{Callee >> 12:x}_000", exit.Detail, StringComparison.Ordinal);
        Assert.Contains("no longer holds its code bytes", exit.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void CodeRewrittenAndReported_RunsTheNewCodeUnchecked()
    {
        // The same rewrite reported (as device DMA and loaders are): the unit is evicted, the check never fires, and the
        // calls after it return the new immediate.
        using var g = NewGuest(report: true);
        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal((ulong)((Calls * 1) + (Calls * 2)), g.State.Registers.Rbx);
    }

    /// <summary>A loop of 2 x <see cref="Calls"/> calls of a function on another page returning 1 in EAX, summed in
    /// EBX; after the first <see cref="Calls"/> a port write makes the VMM rewrite the function to return 2.</summary>
    private static GuestHarness NewGuest(bool report)
    {
        var g = new GuestHarness(null, new BtOptions
        {
            Translation = true,
            TranslationThreshold = 1,
            BackgroundTranslation = false,
            VerifyUnits = true,
        });
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            var loop = a.CreateLabel();
            var skip = a.CreateLabel();
            a.xor(ebx, ebx);
            a.mov(ecx, 2 * Calls);
            a.Label(ref loop);
            a.call(Callee);
            a.add(ebx, eax);
            a.cmp(ecx, Calls + 1);
            a.jne(skip);
            a.mov(edx, Port);
            a.@out(dx, eax);
            a.Label(ref skip);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
        g.Code64(Callee, a =>
        {
            a.mov(eax, 1);
            a.ret();
        });
        g.Pio.Register(Port, 4, new PortProbe(_ =>
        {
            g.Write(Callee + 1, BitConverter.GetBytes(2u));
            if (report)
            {
                g.Vcpu.InvalidateCode(Callee + 1, 4);
            }
        }), "rewrite");
        return g;
    }
}
