// Directed tests of the translator's round-3 (JIT cost) emission: lazy flags committed straight into the Cpu's fields,
// flag commits left out when the next instructions overwrite the flags first (dead flags), the exit data of a faulting
// or store-checked instruction packed into one constant, one status branch for plain stores, and the canonical check
// written out in IL. Each program runs interpreted and with every unit translated on its first execution and must end
// in the same state; faults are taken into a handler that records the frame (RIP, RFLAGS, error code).
using Iced.Intel;
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Tests.Interpreter;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Translation;

public sealed class TranslationFlagsTests
{
    private const ulong DataA = 0x60_0000;   // 2 MiB page 3
    private const ulong Unmapped = 0x4000_0000; // beyond the harness's 16 MiB identity map: #PF
    private const ulong Handler = GuestHarness.CodeBase + 0x800;

    private static GuestHarness NewHarness(bool translate) =>
        new(null, new BtOptions
        {
            CollectStats = true,
            Translation = translate,
            TranslationThreshold = 1,
            BackgroundTranslation = false,
        });

    /// <summary>Runs the program on both tiers to its final HLT; a #PF goes to a handler that saves the frame's RIP,
    /// RFLAGS and error code in R15/R14/R13 and halts.</summary>
    private static BtStats RunBoth(Action<Assembler> program, Action<GuestHarness>? setup = null)
    {
        using var interp = NewHarness(translate: false);
        using var trans = NewHarness(translate: true);
        var states = new List<CpuState>();
        foreach (var g in new[] { interp, trans })
        {
            g.SetupLongMode();
            g.Code64(GuestHarness.CodeBase, program);
            g.Code64(Handler, a =>
            {
                a.mov(r15, __qword_ptr[rsp + 8]);
                a.mov(r14, __qword_ptr[rsp + 24]);
                a.mov(r13, __qword_ptr[rsp]);
                a.hlt();
            });
            g.SetGate64(14, Handler);
            setup?.Invoke(g);
            var exit = g.Run();
            Assert.Equal(VcpuExitReason.Halted, exit.Reason);
            states.Add(g.State);
        }

        var e = states[0].Registers;
        var t = states[1].Registers;
        Assert.Equal(
            new[] { e.Rax, e.Rcx, e.Rdx, e.Rbx, e.Rsp, e.Rbp, e.Rsi, e.Rdi, e.R8, e.R9, e.R10, e.R11, e.R12, e.R13, e.R14, e.R15 },
            new[] { t.Rax, t.Rcx, t.Rdx, t.Rbx, t.Rsp, t.Rbp, t.Rsi, t.Rdi, t.R8, t.R9, t.R10, t.R11, t.R12, t.R13, t.R14, t.R15 });
        Assert.Equal(e.Rip, t.Rip);
        Assert.Equal(e.Rflags, t.Rflags);
        Assert.Equal(states[0].System.Cr2, states[1].System.Cr2);
        Assert.Equal(interp.Vcpu.InstructionsExecuted, trans.Vcpu.InstructionsExecuted);
        Assert.True(trans.Host.Stats.TranslatedInstructions > 0, "no instruction ran translated");
        return trans.Host.Stats;
    }

    [Fact]
    public void DeadFlagRun_ThenFault_HandlerSeesLastWritersFlags()
    {
        // ADD, ROL, SHL, IMUL, NEG and INC overwrite each other's flags with no exit between them (dead commits left
        // out); the XOR's flags are the ones the #PF frame must show.
        RunBoth(a =>
        {
            a.mov(rax, 0x8000_0000_0000_0001UL);
            a.mov(rbx, 0x7FFF_FFFF_FFFF_FFFFUL);
            a.add(rax, rbx);
            a.rol(rax, 5);
            a.shl(rbx, 3);
            a.imul(rcx, rbx, 12345);
            a.neg(rdx);
            a.inc(rbx);
            a.xor(ecx, 0x4000_0001);
            a.mov(r8, __qword_ptr[Unmapped]);
            a.add(r9, 1);         // would make the XOR's flags dead if the load could not exit
            a.hlt();
        });
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(9)]
    [InlineData(10)]
    [InlineData(11)]
    [InlineData(12)]
    public void DeferredWriter_LoadsAfterIt_FaultSeesItsFlags(int form)
    {
        // A full flag writer followed by flag-neutral instructions and loads up to the next full writer keeps its
        // lazy state in locals; each load's fault exit commits it. A loop runs the same code with the loads
        // succeeding (the main path, where the fields keep older state) before the last pass faults in the second load.
        RunBoth(a => ThreePassesLastFaults(a, a =>
        {
            switch (form)
            {
                case 0: a.add(rax, rbx); break;
                case 1: a.sub(eax, ebx); break;
                case 2: a.and(eax, ebx); break;
                case 3: a.or(al, 0x80); break;
                case 4: a.xor(eax, ecx); break;
                case 5: a.cmp(rbx, rax); break;
                case 6: a.test(ebx, 0x8000_0000); break;
                case 7: a.sub(rax, 0x7F); break;
                case 8: a.and(ax, bx); break;
                case 9: a.xor(rax, rax); break;
                case 10: a.shl(rbx, 3); break;
                case 11: a.sar(eax, 31); break;
                default: a.sub(rax, __qword_ptr[DataA + 8]); break;   // a load itself, then the writer
            }

            a.mov(ecx, 7);                       // keeps the flags
            a.mov(rdx, __qword_ptr[rsi]);        // may fault: needs the writer's flags
            a.lea(r8, __[rdx + rcx]);            // keeps the flags
        }), g => g.Write64(DataA + 8, 0x55));
    }

    public static TheoryData<int> RegionForms => [.. Enumerable.Range(0, 10)];

    [Theory]
    [MemberData(nameof(RegionForms))]
    public void DeferredRegion_StoresIncDecAndMemoryCompares_FaultSeesTheWritersFlags(int form)
    {
        // Round 13's regions: INC/DEC deferred (at a join, where nothing is known, its carry-in is computed from the
        // fields by the commit; after a known writer, inline), CMP/TEST with a memory operand deferred, and plain
        // stores, PUSH and POP inside a region (their only exits come before they change anything). Earlier passes
        // take the main path; the last one faults at [rsi + 8], in a load or in a store.
        RunBoth(a => ThreePassesLastFaults(a, a =>
        {
            switch (form)
            {
                case 0: a.inc(rbx); break;
                case 1: a.dec(ebx); break;
                case 2: a.cmp(rbx, rax); a.inc(cl); break;              // carry-in known from the CMP
                case 3: a.cmp(__qword_ptr[rsi], 0x55); break;
                case 4: a.test(__byte_ptr[rsi], 0x81); break;
                case 5: a.cmp(__dword_ptr[rsi], ebx); break;
                case 6: a.inc(rbx); a.push(rbx); a.pop(rcx); break;
                case 7: a.dec(rbx); a.mov(__qword_ptr[rsi + 8], rbx); break;   // the store faults
                case 8: a.sub(rbx, 3); a.push(rbx); break;
                default: a.mov(ecx, 0x8000_0001); a.sub(rbx, 3); a.rol(ecx, 1); a.cmp(__qword_ptr[rsi + 8], 0); break; // CF = OF = 1 from a deferred rotate over the SUB's 0, then the compare faults
            }

            a.mov(__qword_ptr[rsi], rcx);        // a store in the region (succeeds)
            a.mov(rdx, __qword_ptr[rsi]);        // a load in the region
        }), g => g.Write64(DataA, 0x55));
    }

    /// <summary>
    /// A loop of three passes over <paramref name="region"/> followed by a load of [rsi + 8] and a full flag writer
    /// (the region's end): the first passes read DataA (the main path); before the last, RSI moves to the last mapped
    /// qword, so [rsi + 8] faults, with CF = 1 committed in the fields (a SETB reads them) at the join the region
    /// starts at.
    /// </summary>
    private static void ThreePassesLastFaults(Assembler a, Action<Assembler> region)
    {
        var loop = a.CreateLabel();
        var skip = a.CreateLabel();
        a.mov(rsi, DataA);
        a.mov(edi, 3);
        a.mov(rax, 0x8000_0000_0000_0001UL);
        a.mov(rbx, 0x7FFF_FFFF_FFFF_FFF0UL);
        a.Label(ref loop);
        a.cmp(edi, 1);
        a.jne(skip);
        a.mov(rsi, 0x100_0000 - 8);
        a.cmp(rsi, -1);
        a.setb(r11b);
        a.Label(ref skip);
        region(a);
        a.mov(r9, __qword_ptr[rsi + 8]);     // faults on the last pass
        a.add(r10, r9);                      // overwrites every flag: the region ends
        a.add(rbx, 0x1234_5678);
        a.dec(edi);
        a.jnz(loop);
        a.hlt();
    }

    [Fact]
    public void DeferredWriterThenDeferredRotate_LoadFaults_BothCommittedInOrder()
    {
        // The writer's state is committed first, then the rotate's CF/OF on top of it (ZF/SF/PF are the writer's).
        RunBoth(a =>
        {
            a.mov(eax, 0x8000_0001);
            a.mov(ebx, 0x8000_0001);
            a.mov(ecx, 0x8000_0001);
            a.sub(eax, ebx);                     // ZF = 1, CF = 0
            a.rol(ecx, 1);                       // CF = OF = 1 from ECX, the rest from the SUB
            a.mov(edx, 1);
            a.mov(r8, __qword_ptr[Unmapped]);
            a.add(r9, 1);
            a.hlt();
        }, g => { });
    }

    [Fact]
    public void DeadFlags_IncKeepsCarryOfEarlierWriter_MatchesInterpreter()
    {
        // INC reads CF of the SUB before it: that SUB's flags are live although INC overwrites the others.
        RunBoth(a =>
        {
            a.mov(eax, 1);
            a.mov(ebx, 2);
            a.sub(eax, ebx);      // CF = 1
            a.inc(ecx);           // keeps CF
            a.rol(edx, 1);        // keeps ZF/SF/PF, sets CF/OF from the rotate
            a.setb(r9b);
            a.seto(r10b);
            a.sete(r11b);
            a.hlt();
        });
    }

    [Fact]
    public void CompareChains_SameOperationAndSize_MatchInterpreter()
    {
        // Runs of CMP/TEST of one size (the operation and size fields already hold the value and are not stored
        // again), conditions reading operands from registers overwritten in between, and ADC/SBB carry chains.
        RunBoth(a =>
        {
            var l1 = a.CreateLabel();
            var l2 = a.CreateLabel();
            var loop = a.CreateLabel();
            a.mov(rcx, 40);
            a.mov(rsi, DataA);
            a.Label(ref loop);
            a.mov(rax, rcx);
            a.imul(rax, rax, 0x1E37_79B9);
            a.cmp(rax, rcx);
            a.setl(r8b);
            a.cmp(rax, 0x1000);
            a.seta(r9b);
            a.mov(rax, 3);          // the CMP's first operand is overwritten: its condition reads the field
            a.setbe(r10b);
            a.test(ecx, 1);
            a.jz(l1);
            a.add(r11, rcx);
            a.Label(ref l1);
            a.sub(rbx, rcx);
            a.jne(l2);              // E/NE after SUB from the result
            a.inc(r12);
            a.Label(ref l2);
            a.adc(rdx, rcx);
            a.sbb(rdi, rbx);
            a.add(__qword_ptr[rsi + 8], rdx);
            a.mov(__qword_ptr[rsi + 16], rdi);
            a.mov(__dword_ptr[rsi + 24], 0x1234_5678);
            a.dec(rcx);
            a.jnz(loop);
            a.mov(r13, __qword_ptr[rsi + 8]);
            a.mov(r14, __qword_ptr[rsi + 16]);
            a.mov(r15, __qword_ptr[rsi + 24]);
            a.hlt();
        });
    }

    [Fact]
    public void PlainStoreThenFaultingStore_FaultExitAtSecondStore_MatchesInterpreter()
    {
        // Two plain stores in one block: the first succeeds, the second faults through the shared status branch;
        // the packed exit data must name the second (RIP and instruction count in the frame and the counters).
        RunBoth(a =>
        {
            a.mov(rsi, DataA);
            a.add(rax, 7);
            a.mov(__qword_ptr[rsi], rax);
            a.cmp(rax, 9);        // CF and SF set: unlike the ADD before it
            a.mov(__qword_ptr[Unmapped + 8], rax);
            a.sub(rax, rax);
            a.hlt();
        });
    }

    [Fact]
    public void CascadedConditions_AfterNotTakenJcc_AndAtJoins_MatchInterpreter()
    {
        // The instruction after a not-taken Jcc keeps what is known about the flags (one path leads there); a join
        // (here reached from SUB, TEST and ADD) must not.
        RunBoth(a =>
        {
            var loop = a.CreateLabel();
            var less = a.CreateLabel();
            var eq = a.CreateLabel();
            var merge = a.CreateLabel();
            a.mov(rcx, 24);
            a.Label(ref loop);
            a.mov(rax, rcx);
            a.and(eax, 7);
            a.cmp(rax, 3);
            a.je(eq);
            a.jl(less);
            a.seta(r8b);
            a.sub(rax, 5);
            a.jmp(merge);
            a.Label(ref less);
            a.test(eax, eax);
            a.jmp(merge);
            a.Label(ref eq);
            a.add(rax, -100);
            a.Label(ref merge);
            a.setl(r9b);
            a.setz(r10b);
            a.adc(r11, r9);
            a.add(r12, r10);
            a.add(r13, r8);
            a.dec(rcx);
            a.jnz(loop);
            a.hlt();
        });
    }

    [Fact]
    public void JccLeavingTheUnit_MidBlock_CountsOnlyExecutedInstructions()
    {
        // The JE's target (HLT) is not translated: its taken edge exits in the middle of a block that goes on after
        // it, and the instruction count must not include the rest of that block. Partial-register writes (AL, BX)
        // merge into their registers.
        RunBoth(a =>
        {
            var loop = a.CreateLabel();
            var done = a.CreateLabel();
            a.mov(rcx, 9);
            a.mov(rax, 0x1122_3344_5566_7788UL);
            a.Label(ref loop);
            a.cmp(rcx, 4);
            a.je(done);
            a.add(al, cl);
            a.sub(bx, cx);
            a.add(rdx, rcx);
            a.dec(rcx);
            a.jnz(loop);
            a.Label(ref done);
            a.hlt();
        });
    }

    public static TheoryData<int> CarryHandoffForms => [.. Enumerable.Range(0, 6)];

    [Theory]
    [MemberData(nameof(CarryHandoffForms))]
    public void IncDecAtLoopHead_CarryFromTheBackEdgesWriter_MatchesInterpreter(int form)
    {
        // A loop whose head is INC/DEC (a join) and whose back edge follows a deferred full writer: the edge hands the
        // writer's CF to the INC/DEC in a local instead of committing it (UnitCompiler.CarryJoin). The ADC after the
        // head accumulates the carry-in it saw on every pass (the first pass of each run of the loop comes from the
        // CMP before it, committed in the Cpu's fields), and the flags after the loop are the writer's.
        byte[] bytes = [0x90, 0x10, 0xA0, 0x05, 0x7F, 0xFF, 0x80, 0x04];
        RunBoth(a =>
        {
            var head = a.CreateLabel();
            var outer = a.CreateLabel();
            a.mov(edi, 2);
            a.xor(r13d, r13d);
            a.Label(ref outer);
            a.mov(rsi, DataA);
            a.lea(rax, __[rsi - 1]);
            a.mov(ecx, 40);
            a.mov(edx, 0x9E37_79B9);
            a.xor(ebx, ebx);
            a.xor(r9d, r9d);
            a.mov(r10d, -12);
            a.mov(r11, -5L);
            a.cmp(ebx, 1);                      // CF = 1 in the fields for the first pass (committed: a join follows)
            a.Label(ref head);
            if (form is 1 or 3 or 5)
            {
                a.dec(rcx);
            }
            else
            {
                a.inc(rax);
            }

            a.adc(rbx, 0);
            a.lea(r9, __[r9 + rbx * 2]);
            switch (form)
            {
                case 0: a.cmp(__byte_ptr[rax], 0x80); a.jne(head); break;            // CMP with memory: CF = byte < 0x80, ends at 0x80
                case 1: a.cmp(rcx, r11); a.jg(head); break;                           // SUB: CF = 1 while RCX >= 0, then 0 down to -5
                case 2: a.add(dl, __byte_ptr[rax]); a.jnz(head); break;               // ADD: carries on some passes, DL = 0 at the last byte
                case 3: a.test(ecx, 7); a.jnz(head); break;                           // logic: CF = 0
                case 4: a.cmp(__byte_ptr[rax], 0x80); a.mov(r8d, 5); a.jb(head); a.cmp(__byte_ptr[rax], 0x80); a.jne(head); break;
                default: a.add(edx, 0x4000_0000); a.mov(r8, __qword_ptr[rsi]); a.inc(r10d); a.jne(head); break; // a deferred INC's carry-in (the ADD's CF) handed on, 12 passes
            }

            // Twice: the second time the head is entered by falling through from the committed CMP, after the last
            // pass of the first left a token behind.
            a.pushfq();
            a.pop(r12);
            a.add(r13, r12);
            a.dec(edi);
            a.jnz(outer);
            a.hlt();
        }, g => g.Write(DataA, bytes));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void IncAtLoopHead_CompareFaultsPastThePageEnd_FrameHasTheIncsFlags(bool dec)
    {
        // `inc rax; cmp byte [rax], 0x80; jne head` walks off the last mapped page: the CMP's #PF frame holds the INC's
        // flags, whose CF is the CMP of the pass before (handed over the back edge, never committed on the main path).
        byte[] bytes = [0x90, 0x10, 0xA0, 0x05];
        RunBoth(a =>
        {
            var head = a.CreateLabel();
            a.mov(rax, 0x100_0000 - 5);
            a.mov(ecx, 1000);
            a.stc();
            a.Label(ref head);
            if (dec)
            {
                a.dec(ecx);
            }

            a.inc(rax);
            a.cmp(__byte_ptr[rax], 0x80);
            a.jne(head);
            a.hlt();
        }, g => g.Write(0x100_0000 - 4, bytes));
    }
}
