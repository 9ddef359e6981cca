// A vCPU keeps at most Cpu.MaxDecodedPages decoded code pages; running code spread over more pages trims the least
// recently used ones, which must be decoded (and found translated) again when they run next.
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Instructions;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Interpreter;

public sealed class DecodedPageTrimTests
{
    private const ulong StubBase = 0x10_0000;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CodeOnMorePagesThanKept_TwoPasses_EveryCallReturnsItsValue(bool translate)
    {
        int pages = Cpu.MaxDecodedPages + 100;
        using var g = new GuestHarness(null, new BtOptions { Translation = translate, TranslationThreshold = 1, BackgroundTranslation = false });
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            var pass = a.CreateLabel();
            var call = a.CreateLabel();
            a.xor(ebx, ebx);
            a.mov(r8d, 2);
            a.Label(ref pass);
            a.mov(rsi, StubBase);
            a.mov(ecx, pages);
            a.Label(ref call);
            a.call(rsi);
            a.add(rbx, rax);
            a.add(rsi, 0x1000);
            a.dec(ecx);
            a.jnz(call);
            a.dec(r8d);
            a.jnz(pass);
            a.hlt();
        });
        for (int i = 0; i < pages; i++)
        {
            ulong at = StubBase + ((ulong)i * 0x1000);
            g.Code64(at, a =>
            {
                a.mov(eax, i + 1);
                a.ret();
            });
        }

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        ulong expected = 2UL * (ulong)pages * (ulong)(pages + 1) / 2;
        Assert.Equal(expected, g.State.Registers.Rbx);
    }
}
