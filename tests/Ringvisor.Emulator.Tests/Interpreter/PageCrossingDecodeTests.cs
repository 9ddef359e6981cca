// An instruction that straddles two pages is decoded once and kept beside its first page (CodePage.Crossing*); the
// cached copy must follow a store into the part that lies on the second page.
using Ringvisor.Core.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Interpreter;

public sealed class PageCrossingDecodeTests
{
    private const ulong SecondPage = 0x3_0000;
    private const ulong Crossing = SecondPage - 2; // E9 rel32: opcode + 1 byte on the first page, 3 bytes on the second
    private const ulong StubA = 0x10_0000;
    private const ulong StubB = 0x20_0000;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CrossingInstruction_SecondPageRewrittenInLoop_NewBytesExecute(bool translate)
    {
        // A crossing JMP rel32 (its rel32 mostly on the second page) picks one of two stubs on other pages, so nothing
        // else ever fetches from the second page: only the crossing decode itself can have marked it as code.
        int relA = (int)(StubA - (Crossing + 5));
        int relB = (int)(StubB - (Crossing + 5));
        Assert.Equal(relA & ~0xFF_0000, relB & ~0xFF_0000);
        using var g = new GuestHarness(null, new BtOptions { Translation = translate, TranslationThreshold = 1 });
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            var loop = a.CreateLabel();
            var skip = a.CreateLabel();
            a.mov(ecx, 10);
            a.xor(ebx, ebx);
            a.mov(rdi, SecondPage);
            a.Label(ref loop);
            a.mov(rax, Crossing);
            a.call(rax);
            a.add(ebx, eax);
            a.cmp(ecx, 5);
            a.jne(skip);
            a.mov(__byte_ptr[rdi + 1], (byte)(relB >> 16)); // rel32 byte 2 lives on the second page
            a.Label(ref skip);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
        g.Write(Crossing, [0xE9, .. BitConverter.GetBytes(relA)]);
        g.Code64(StubA, a =>
        {
            a.mov(eax, 1);
            a.ret();
        });
        g.Code64(StubB, a =>
        {
            a.mov(eax, 100);
            a.ret();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);

        // Six calls before the store (ECX 10..5) reach stub A, four after it stub B.
        Assert.Equal((6 * 1) + (4 * 100), (int)g.State.Registers.Rbx);
    }
}
