// Directed tests of deferred flag writers (UnitCompiler.FlagLiveness.cs, _writerDeferred): a full flag writer whose
// flags only inline conditions, fault exits, exits and the paths out of its block can see keeps its lazy state in
// locals; every exit and every path where the flags are live must commit it. Each program runs interpreted and with
// every unit translated on its first execution and must end in the same state.
using Iced.Intel;
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Tests.Interpreter;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Translation;

public sealed partial class TranslationTests
{
    [Fact]
    public void CountedLoop_AddThenBackwardJne_FlagsAfterTheLoopAreTheLastAdds()
    {
        // `add ecx, -1; jne loop`: the ADD's flags are read by the JNE only; leaving the loop (the fall-through of the
        // backward branch) must commit them for the PUSHFQ after it (CF = 1, ZF = 1 from 1 + 0xFFFFFFFF).
        RunBoth(a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, 1000);
            a.xor(r8d, r8d);
            a.cmp(r8d, 5);                  // a committed state unlike the ADD's (CF = 1, ZF = 0, SF = 1)
            a.Label(ref loop);
            a.add(r8d, 3);
            a.add(ecx, -1);
            a.jne(loop);
            a.pushfq();
            a.pop(r13);
            a.hlt();
        });
    }

    [Fact]
    public void ConditionsAfterAddShiftIncDec_EverySizeAndForm_MatchInterpreter()
    {
        // Each writer's flags are read by eight SETcc (carry, below-or-equal, zero, sign and their negations) and
        // folded into R10 with LEA/MOVZX (no flag changes). Values cross the carry and zero boundaries of each size.
        void Probe(Assembler a)
        {
            foreach (var set in new Action[]
            {
                () => a.setb(dl), () => a.setae(dl), () => a.setbe(dl), () => a.seta(dl),
                () => a.sete(dl), () => a.setne(dl), () => a.sets(dl), () => a.setns(dl),
            })
            {
                set();
                a.movzx(edx, dl);
                a.lea(r9, __[rdx + r9 * 2]);
            }
        }

        RunBoth(a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, 300);
            a.xor(r10d, r10d);
            a.Label(ref loop);
            a.xor(r9d, r9d);
            a.mov(eax, ecx);
            a.imul(eax, eax, unchecked((int)0x9E37_79B9));
            a.mov(ebx, eax);
            a.neg(ebx);
            a.lea(ebx, __[rbx + rcx - 150]);   // eax + ebx = ecx - 150: zero once, carry on either side
            a.mov(esi, eax);
            a.add(eax, ebx);
            Probe(a);
            a.mov(eax, esi);
            a.add(ax, bx);
            Probe(a);
            a.mov(eax, esi);
            a.add(al, bl);
            Probe(a);
            a.mov(rax, rsi);
            a.add(rax, rbx);
            Probe(a);
            a.mov(eax, ecx);
            a.sub(eax, 150);
            a.add(eax, eax);                            // zero without a carry once: BE/A need ZF as well as CF
            Probe(a);
            a.mov(eax, esi);
            a.shl(eax, 5);
            Probe(a);
            a.mov(eax, ecx);
            a.sub(eax, 150);
            a.inc(eax);
            Probe(a);
            a.dec(eax);
            Probe(a);
            a.add(r10, r9);
            a.imul(r10, r10, 31);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
    }

    [Fact]
    public void DeferredCompare_OperandRegistersOverwritten_ReadersSeeTheComparedValues()
    {
        // CMP's operands are overwritten before CMOVAE, SETB and SBB read its flags (the multiply-accumulate shape
        // of the kernel's mpihelp loops): the readers must use the values compared, not the registers now.
        RunBoth(a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, 200);
            a.xor(esi, esi);
            a.xor(edi, edi);
            a.Label(ref loop);
            a.mov(r13, rcx);
            a.imul(r13, r13, 0x5851_F42D);
            a.mov(rax, rcx);
            a.shl(rax, 40);
            a.cmp(rax, r13);
            a.mov(r13, rax);
            a.mov(eax, 7);
            a.mov(r14, rcx);
            a.cmovae(rdx, r14);
            a.setb(bl);
            a.sbb(rsi, rdi);
            a.add(rdi, rdx);
            a.movzx(ebx, bl);
            a.add(rdi, rbx);
            a.sub(r13, rax);
            a.adc(rdi, rcx);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
    }

    [Fact]
    public void DeferredAdd_JccLeavesTheUnit_TargetReadsTheFlags()
    {
        // The JC's target is on another page (another unit): its exit must commit the ADD's flags, which the
        // target's SETcc read.
        RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(ecx, 100);
                a.mov(eax, 0xFFFF_FF00);
                a.cmp(eax, eax);            // committed: ZF = 1, CF = 0
                a.Label(ref loop);
                a.add(eax, 3);
                a.jc(DataA);
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g => g.Code64(DataA, b =>
            {
                b.setc(r8b);
                b.setz(r9b);
                b.sets(r10b);
                b.pushfq();
                b.pop(r11);
                b.hlt();
            }));
    }

    [Fact]
    public void InterruptAtTheBudgetExitOfADeferredAddLoop_FrameHoldsTheAddsFlags()
    {
        // `add r8d, 1; jne loop` runs translated until an interrupt arrives; it is taken at the loop's backward-branch
        // exit, whose commit must leave the ADD's flags in RFLAGS (the last committed state before the loop was a
        // CMP with ZF = 1).
        const ulong handler = GuestHarness.CodeBase + 0x800;
        var apic = new FakeLocalApic();
        using var g = NewHarness(translate: true, apic: apic);
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            var loop = a.CreateLabel();
            a.mov(r8d, 1);
            a.cmp(r8d, r8d);
            a.sti();
            a.nop();
            a.Label(ref loop);
            a.add(r8d, 1);
            a.jne(loop);
            a.hlt();
        });
        g.Code64(handler, a =>
        {
            a.mov(r15, __qword_ptr[rsp]);       // interrupted RIP
            a.mov(r14, __qword_ptr[rsp + 16]);  // RFLAGS
            a.hlt();
        });
        g.SetGate64(0x40, handler);
        var raiser = new Thread(() =>
        {
            SpinWait.SpinUntil(() => g.Host.Stats.TranslatedInstructions > 100_000, 30_000);
            apic.Raise(0x40);
        });
        raiser.Start();
        var exit = g.Run();
        raiser.Join();
        Assert.Equal(VcpuExitReason.Halted, exit.Reason);
        var s = g.State.Registers;
        Assert.True(g.Host.Stats.TranslatedInstructions > 100_000, g.Host.Stats.Format());
        uint r = (uint)s.R8;
        ulong flags = s.R14;
        // Where the loop was interrupted, the last instruction was the ADD that left R8D (the JNE changes nothing).
        Assert.Equal(r == 0, (flags & 0x01) != 0);                                        // CF
        Assert.Equal((System.Numerics.BitOperations.PopCount(r & 0xFF) & 1) == 0, (flags & 0x04) != 0); // PF
        Assert.Equal((r & 0xF) == 0, (flags & 0x10) != 0);                                // AF
        Assert.Equal(r == 0, (flags & 0x40) != 0);                                        // ZF
        Assert.Equal((r >> 31) != 0, (flags & 0x80) != 0);                                // SF
        Assert.Equal(r == 0x8000_0000, (flags & 0x800) != 0);                             // OF
        Assert.InRange(s.R15, GuestHarness.CodeBase + 11, GuestHarness.CodeBase + 15); // the loop: ADD at +11, JNE at +15
    }
}
