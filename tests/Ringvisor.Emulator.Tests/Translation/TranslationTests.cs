// Directed tests of the translator (Translation/) through the run loop: every program runs twice, interpreted and with
// every unit translated on its first execution, and must end in the same architectural state (the interpreter is the
// reference); the counters show that translated code actually ran and which exits it took.
using Iced.Intel;
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Tests.Interpreter;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Translation;

public sealed partial class TranslationTests
{
    private const ulong DataA = 0x60_0000;   // 2 MiB page 3
    private const ulong DataB = 0x80_0000;   // 2 MiB page 4
    private const ulong Unmapped = 0x4000_0000; // beyond the harness's 16 MiB identity map: #PF

    private static GuestHarness NewHarness(bool translate, long budget = 32L << 20, FakeLocalApic? apic = null, bool traces = false) =>
        new(apic is null ? null : [apic], new BtOptions
        {
            CollectStats = true,
            Translation = translate,
            TranslationThreshold = 1,
            BackgroundTranslation = false,
            TranslationBudgetBytes = budget,
            Traces = traces,
        });

    /// <summary>Runs the program on both tiers to its final HLT (IF = 0) and returns the translated side's harness stats.</summary>
    private static BtStats RunBoth(Action<Assembler> program, Action<GuestHarness>? setup = null, long budget = 32L << 20, ulong[]? compareAt = null, bool traces = false)
    {
        using var interp = NewHarness(translate: false);
        using var trans = NewHarness(translate: true, budget, traces: traces);
        var states = new List<CpuState>();
        foreach (var g in new[] { interp, trans })
        {
            g.SetupLongMode();
            g.Code64(GuestHarness.CodeBase, program);
            setup?.Invoke(g);
            var exit = g.Run();
            Assert.Equal(VcpuExitReason.Halted, exit.Reason);
            states.Add(g.State);
        }

        AssertSameState(states[0], states[1]);
        foreach (ulong a in compareAt ?? [])
        {
            Assert.Equal(interp.Read64(a), trans.Read64(a));
        }

        Assert.True(trans.Host.Stats.TranslatedInstructions > 0, "no instruction ran translated");
        Assert.Equal(interp.Vcpu.InstructionsExecuted, trans.Vcpu.InstructionsExecuted);
        return trans.Host.Stats;
    }

    private static void AssertSameState(CpuState expected, CpuState actual)
    {
        var e = expected.Registers;
        var a = actual.Registers;
        Assert.Equal(
            new[] { e.Rax, e.Rcx, e.Rdx, e.Rbx, e.Rsp, e.Rbp, e.Rsi, e.Rdi, e.R8, e.R9, e.R10, e.R11, e.R12, e.R13, e.R14, e.R15 },
            new[] { a.Rax, a.Rcx, a.Rdx, a.Rbx, a.Rsp, a.Rbp, a.Rsi, a.Rdi, a.R8, a.R9, a.R10, a.R11, a.R12, a.R13, a.R14, a.R15 });
        Assert.Equal(e.Rip, a.Rip);
        Assert.Equal(e.Rflags, a.Rflags);
        Assert.Equal(expected.System.Cr2, actual.System.Cr2);
    }

    [Fact]
    public void MixedIntegerLoop_Translated_MatchesInterpreter()
    {
        var stats = RunBoth(a =>
        {
            var loop = a.CreateLabel();
            var skip = a.CreateLabel();
            a.mov(rcx, 200);
            a.mov(rax, 0x0123_4567_89AB_CDEFUL);
            a.xor(ebx, ebx);
            a.mov(rsi, DataA);
            a.Label(ref loop);
            a.add(rbx, rax);
            a.adc(bx, cx);
            a.rol(rax, 7);          // not translated: splits the loop into units
            a.sub(al, 3);
            a.sbb(edx, ebx);
            a.imul(rdx, rbx, 0x1234);
            a.movzx(edi, dl);
            a.movsx(r8, di);
            a.lea(r9, __[rbx + rcx * 4 + 0x10]);
            a.mov(__[rsi + rcx * 8], r9);
            a.add(__dword_ptr[rsi], 5);
            a.test(r9b, 1);
            a.setne(r10b);
            a.cmovs(r11, r8);
            a.shr(r9, 3);
            a.sar(r8d, 5);
            a.inc(r12);
            a.cmp(r9, rbx);
            a.jb(skip);
            a.dec(r13d);
            a.push(r13);
            a.pop(r14);
            a.Label(ref skip);
            a.dec(rcx);
            a.jnz(loop);
            a.hlt();
        }, compareAt: [DataA, DataA + 8, DataA + 800]);
        Assert.True(stats.UnitsTranslated > 0);
    }

    [Fact]
    public void RotateFlags_DeadBeforeFullWriterLiveBeforeCarryReader_MatchInterpreter()
    {
        // ROL/ROR followed by ADD/XOR/CMP/TEST in registers: the rotate's CF/OF are not materialised (dead); followed by
        // ADC, SBB, INC (keeps CF), a memory ALU (may fault) or a Jcc, they must be.
        RunBoth(a =>
        {
            var loop = a.CreateLabel();
            var next = a.CreateLabel();
            a.mov(rcx, 300);
            a.mov(eax, 0x6745_2301);
            a.mov(ebx, 0xEFCD_AB89);
            a.mov(rsi, DataA);
            a.Label(ref loop);
            a.rol(eax, 7);
            a.add(eax, ebx);
            a.ror(ebx, 12);
            a.xor(ebx, eax);
            a.rol(rdx, 3);
            a.adc(rdx, rax);
            a.ror(edi, 31);
            a.sbb(edi, ecx);
            a.rol(r8d, 1);
            a.inc(r8d);
            a.ror(r9, 5);
            a.add(__qword_ptr[rsi], r9);
            a.rol(r10d, 9);
            a.cmp(r10d, eax);
            a.ror(r11w, 4);
            a.test(r11d, 1);
            a.rol(r12b, 1);
            a.jo(next);
            a.inc(r14);
            a.Label(ref next);
            a.dec(rcx);
            a.jnz(loop);
            a.pushfq();
            a.pop(r13);
            a.hlt();
        }, compareAt: [DataA]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RotateThenFaultingLoad_FlagsAtTheFaultAreTheRotates(bool aluLoadFaults)
    {
        // A rotate whose flags only a fault of the loads after it can see (they end with an ALU load that overwrites
        // them) keeps CF/OF aside; when a load faults, the handler must see the rotate's CF/OF on top of the ADD's
        // ZF/SF/PF/AF, exactly as the interpreter leaves them.
        const ulong handler = GuestHarness.CodeBase + 0x800;
        RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                var skip = a.CreateLabel();
                a.mov(ecx, 40);
                a.mov(rsi, DataA);
                a.mov(rdi, DataA);
                a.Label(ref loop);
                a.mov(eax, ecx);
                a.imul(eax, eax, 0x0F0F_0F0F);
                a.add(eax, 0x7FFF_FFF0);
                a.rol(eax, 4);                      // at the faulting pass: CF 1 as ADD's, OF 1 (ADD's 0)
                a.mov(ebx, __dword_ptr[rsi]);
                a.movzx(r8d, __byte_ptr[rsi + 4]);
                a.add(edx, __dword_ptr[rdi + 8]);
                a.add(edx, ebx);
                a.cmp(ecx, 13);
                a.jne(skip);
                a.mov(aluLoadFaults ? rdi : rsi, Unmapped);
                a.Label(ref skip);
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g =>
            {
                g.Code64(handler, a =>
                {
                    a.mov(r15, __qword_ptr[rsp + 8]);   // faulting RIP
                    a.mov(r14, __qword_ptr[rsp + 24]);  // RFLAGS at the fault
                    a.hlt();
                });
                g.SetGate64(14, handler);
                g.Write64(DataA, 0x1234_5678_9ABC_DEF0);
                g.Write64(DataA + 8, 0x0FED_CBA9_8765_4321);
            });
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RotatesBeforeAJoin_FaultingLoadInTheJoin_FlagsMatchInterpreter(bool faultOnEntry)
    {
        // The kernel's hash loop shape: ROL and ROR at the end of a block that falls through into a join whose first
        // instruction is a load, then a full flag writer. The rotates' CF/OF are kept aside across the block boundary;
        // a fault of that load must see them on top of the XOR's flags when reached through the fall-through, and the
        // flags as they were when reached through the jump into the join (no rotate pending on that path).
        const ulong handler = GuestHarness.CodeBase + 0x800;
        RunBoth(
            a =>
            {
                var top = a.CreateLabel();
                var join = a.CreateLabel();
                a.mov(ecx, 30);
                a.mov(rbx, DataA);
                a.xor(r8d, r8d);
                a.mov(rdx, 0x0123_4567_89AB_CDEFUL);
                a.mov(rsi, 0x0FED_CBA9_8765_4321UL);
                if (faultOnEntry)
                {
                    a.mov(rbx, Unmapped);
                }

                a.cmp(ecx, 31);                     // flags before the loop: CF set, ZF clear
                a.jmp(join);
                a.Label(ref top);
                a.xor(rcx, rsi);
                a.add(r8, 8);
                a.xor(rdx, rcx);
                a.rol(rcx, 12);
                a.lea(rsi, __[rdx + rcx]);
                a.ror(rdx, 19);
                a.lea(rdx, __[rdx + rdx * 8]);
                a.Label(ref join);
                a.mov(rax, __qword_ptr[rbx + r8]);  // faults when RBX/R8 leave the mapped data
                a.mov(rcx, rax);
                a.xor(rax, r9);
                a.add(r10, rax);
                a.cmp(r8, 8 * 20);
                a.jne(top);
                a.mov(rbx, Unmapped);
                a.jmp(top);
            },
            g =>
            {
                g.Code64(handler, a =>
                {
                    a.mov(r15, __qword_ptr[rsp + 8]);   // faulting RIP
                    a.mov(r14, __qword_ptr[rsp + 24]);  // RFLAGS at the fault
                    a.hlt();
                });
                g.SetGate64(14, handler);
                for (ulong i = 0; i < 32; i++)
                {
                    g.Write64(DataA + (8 * i), 0x9E37_79B9_7F4A_7C15UL * (i + 1));
                }
            });
    }

    [Fact]
    public void LockedCmpxchgAndXadd_HostAtomics_MatchInterpreter()
    {
        // LOCK CMPXCHG (succeeding every other iteration, failing otherwise) and LOCK XADD on aligned dwords and
        // qwords run as host atomics in IL; an unaligned LOCK XADD takes the helper. Results, RAX after a failed
        // compare and the flags (read by SETcc/ADC) must match the interpreter.
        RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(ecx, 60);
                a.mov(r8, DataA);
                a.Label(ref loop);
                a.mov(rax, __qword_ptr[r8]);
                a.test(cl, 1);
                a.setz(dl);
                a.movzx(edx, dl);
                a.add(rax, rdx);                       // odd iterations: expected is off by one, the compare fails
                a.lea(rdx, __[rcx + rcx * 2]);
                a.@lock.cmpxchg(__qword_ptr[r8], rdx);
                a.setz(__byte_ptr[r8 + rcx + 40]);
                a.add(r9, rax);
                a.mov(eax, __dword_ptr[r8 + 8]);
                a.sub(eax, ecx);
                a.@lock.cmpxchg(__dword_ptr[r8 + 8], ecx);
                a.adc(r10, rax);
                a.mov(eax, ecx);
                a.@lock.xadd(__dword_ptr[r8 + 16], eax);
                a.adc(r11, rax);
                a.mov(rbx, -1L);
                a.@lock.xadd(__qword_ptr[r8 + 24], rbx);
                a.sbb(r12, rbx);
                a.mov(edx, 7);
                a.@lock.xadd(__dword_ptr[r8 + 33], edx);   // unaligned: the helper
                a.add(r13, rdx);
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g =>
            {
                g.Write64(DataA, 5);
                g.Write64(DataA + 8, 0xFFFF_FFF0);
                g.Write64(DataA + 16, 0x7FFF_FFF0);
                g.Write64(DataA + 24, 3);
            },
            compareAt: [DataA, DataA + 8, DataA + 16, DataA + 24, DataA + 32, DataA + 40, DataA + 48, DataA + 56, DataA + 64, DataA + 72, DataA + 80, DataA + 88, DataA + 96]);
    }

    [Fact]
    public void SetccMemory_EveryCondition_MatchesInterpreter()
    {
        // SETcc m8 in IL for all sixteen conditions after a compare, an ADD and a rotate, each writing its own byte
        // (RunBoth compares the memory); a flag reader after them checks the flags were left alone.
        RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(ecx, 48);
                a.mov(r8, DataA);
                a.mov(rbx, 0x7FFF_FFFF_FFFF_FFF0UL);
                a.Label(ref loop);
                a.mov(rax, rcx);
                a.shl(rax, 58);
                a.add(rax, rbx);
                a.cmp(rax, rcx);
                a.seto(__byte_ptr[r8]);
                a.setno(__byte_ptr[r8 + 1]);
                a.setb(__byte_ptr[r8 + 2]);
                a.setae(__byte_ptr[r8 + 3]);
                a.sete(__byte_ptr[r8 + 4]);
                a.setne(__byte_ptr[r8 + 5]);
                a.setbe(__byte_ptr[r8 + 6]);
                a.seta(__byte_ptr[r8 + 7]);
                a.sets(__byte_ptr[r8 + 8]);
                a.setns(__byte_ptr[r8 + 9]);
                a.setp(__byte_ptr[r8 + 10]);
                a.setnp(__byte_ptr[r8 + 11]);
                a.setl(__byte_ptr[r8 + 12]);
                a.setge(__byte_ptr[r8 + 13]);
                a.setle(__byte_ptr[r8 + 14]);
                a.setg(__byte_ptr[r8 + 15]);
                a.adc(r9, 0);
                a.add(al, cl);
                a.setc(__byte_ptr[r8 + rcx + 16]);
                a.setz(__byte_ptr[r8 + rcx + 80]);
                a.rol(rbx, 7);
                a.setc(__byte_ptr[r8 + rcx + 144]);
                a.seto(__byte_ptr[r8 + rcx + 208]);
                a.movzx(edx, __byte_ptr[r8 + 2]);
                a.add(r10, rdx);
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            compareAt: [.. Enumerable.Range(0, 34).Select(i => DataA + (ulong)(8 * i))]);
    }

    [Fact]
    public void XchgMemory_HostAtomic_MatchesInterpreter()
    {
        // XCHG m, r (one encoding for both operand orders) on aligned dwords and qwords (a host Interlocked.Exchange), an unaligned one
        // (the helper), and through GS (a segment base), with the flags of a compare kept across them.
        RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(ecx, 40);
                a.mov(r8, DataA);
                a.mov(eax, 0xC000_0101);                  // IA32_GS_BASE = DataA + 0x100
                a.mov(edx, 0);
                a.mov(r9d, (uint)(DataA + 0x100));
                a.push(rcx);
                a.mov(ecx, eax);
                a.mov(eax, r9d);
                a.wrmsr();
                a.pop(rcx);
                a.Label(ref loop);
                a.cmp(ecx, 20);
                a.lea(rax, __[rcx + rcx * 4]);
                a.xchg(__qword_ptr[r8], rax);
                a.add(rbx, rax);
                a.mov(edx, ecx);
                a.xchg(__dword_ptr[r8 + 8], edx);
                a.adc(rbx, rdx);
                a.mov(esi, ecx);
                a.xchg(__dword_ptr[r8 + 13], esi);         // unaligned
                a.add(r10, rsi);
                a.mov(rdi, rcx);
                a.xchg(__qword_ptr.gs[0x10], rdi);
                a.sbb(r11, rdi);
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g =>
            {
                g.Write64(DataA, 7);
                g.Write64(DataA + 8, 0xFFFF_FFFF_0000_0009);
                g.Write64(DataA + 0x110, 11);
            },
            compareAt: [DataA, DataA + 8, DataA + 16, DataA + 0x110]);
    }

    [Fact]
    public void LockedRepAndPrefixedForms_RunAsHelpersInsideTheUnit_MatchInterpreter()
    {
        // LOCK read-modify-writes, XCHG with memory, REP MOVSB/STOSQ, PUSHFQ, SETcc m8, CLI and SSE integer forms run
        // through the interpreter from inside the unit (helper calls), PREFETCH/LFENCE as NOPs, in a loop with flags
        // read after each.
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(ecx, 50);
                a.mov(r8, DataA);
                a.mov(r9, DataA + 0x100);
                a.Label(ref loop);
                a.@lock.add(__qword_ptr[r8], rcx);
                a.adc(rbx, 0);
                a.mov(eax, ecx);
                a.@lock.xadd(__dword_ptr[r8 + 8], eax);
                a.add(rbx, rax);
                a.mov(eax, __dword_ptr[r8 + 16]);
                a.mov(edx, ecx);
                a.@lock.cmpxchg(__dword_ptr[r8 + 16], edx);
                a.sete(__byte_ptr[r8 + 24]);
                a.xchg(__qword_ptr[r8 + 32], rbx);
                a.pushfq();
                a.pop(r10);
                a.add(r11, r10);
                a.prefetcht0(__byte_ptr[Unmapped]);          // never faults
                a.lfence();
                a.cli();
                a.mov(eax, cs);
                a.add(r11, rax);
                a.push(rbp);
                a.mov(rbp, rsp);
                a.push(rax);
                a.leave();
                a.mov(rsi, r8);
                a.mov(rdi, r9);
                a.mov(r12, rcx);
                a.mov(ecx, 40);
                a.rep.movsb();
                a.mov(ecx, 3);
                a.mov(rax, r12);
                a.rep.stosq();
                a.mov(rcx, r12);
                a.movq(xmm0, rcx);
                a.movq(xmm1, rbx);
                a.punpckldq(xmm0, xmm1);
                a.punpcklwd(xmm0, xmm1);
                a.psrld(xmm0, 3);
                a.pshufb(xmm1, xmm0);
                a.psubb(xmm1, xmm0);
                a.paddw(xmm1, xmm0);
                a.pcmpgtb(xmm1, xmm0);
                a.movq(rax, xmm1);
                a.add(r13, rax);
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g =>
            {
                g.Write64(DataA + 16, 7);
            },
            compareAt: [DataA, DataA + 8, DataA + 16, DataA + 24, DataA + 32, DataA + 0x100, DataA + 0x128, DataA + 0x130]);
        // Each of these forms ended its unit before (interpreted once per iteration: 500+ instructions).
        long interpreted = stats.Instructions - stats.TranslatedInstructions;
        Assert.True(interpreted < 50, $"{interpreted} instructions interpreted: the prefixed forms did not run inside the unit");
    }

    [Fact]
    public void SseInUnit_Cr0TsSetMidLoop_NmRaisedAtTheInstruction()
    {
        // Translated SSE moves/logic with CR0.TS set every eighth iteration: the first SSE instruction after it must
        // raise #NM (the handler clears TS with CLTS and counts), then the unit's results must match the interpreter.
        const ulong Handler = 0x2_0000;
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                var noTs = a.CreateLabel();
                a.mov(ecx, 64);
                a.mov(rsi, DataA);
                a.mov(eax, 0x0102_0304);
                a.movd(xmm1, eax);
                a.pshufd(xmm2, xmm1, 0x1B);
                a.Label(ref loop);
                a.test(ecx, 7);
                a.jnz(noTs);
                a.mov(rax, cr0);
                a.or(rax, 8);
                a.mov(cr0, rax);
                a.Label(ref noTs);
                a.pxor(xmm0, xmm1);
                a.paddd(xmm1, xmm2);
                a.movdqa(__xmmword_ptr[rsi], xmm1);
                a.pcmpeqb(xmm3, __xmmword_ptr[rsi]);
                a.pmovmskb(edx, xmm3);
                a.add(ebx, edx);
                a.movq(r8, xmm0);
                a.add(r9, r8);
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g =>
            {
                g.Code64(Handler, a =>
                {
                    a.clts();
                    a.inc(r15);
                    a.iretq();
                });
                g.SetGate64(7, Handler);
            },
            compareAt: [DataA, DataA + 8]);
        Assert.True(stats.ExceptionCount(7) > 0, "no #NM was raised");
    }

    [Fact]
    public void SseStoreCrossingIntoUnmappedPage_FaultsWithNothingWritten()
    {
        // MOVDQU stores and loads in a loop: within one page (the quadword fast path), then one that straddles the end
        // of the mapped 16 MiB. The straddling store must raise #PF (CR2 = first unmapped byte) and write nothing.
        const ulong Handler = 0x2_0000;
        const ulong Edge = 0x100_0000;
        RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(rsi, DataA);
                a.mov(ecx, 40);
                a.mov(rax, 0x1122_3344_5566_7788UL);
                a.movq(xmm0, rax);
                a.pshufd(xmm0, xmm0, 0x44);
                a.Label(ref loop);
                a.movdqu(__xmmword_ptr[rsi + rcx * 8 + 3], xmm0);
                a.movdqu(xmm1, __xmmword_ptr[rsi + rcx * 8 + 1]);
                a.paddq(xmm0, xmm1);
                a.dec(ecx);
                a.jnz(loop);
                a.mov(rdi, Edge - 8);
                a.movdqu(__xmmword_ptr[rdi], xmm0);
                a.hlt();
            },
            g =>
            {
                g.Code64(Handler, a =>
                {
                    a.mov(r15, cr2);
                    a.hlt();
                });
                g.SetGate64(14, Handler);
                g.Write64(Edge - 8, 0x5A5A_5A5A_5A5A_5A5AUL);
            },
            compareAt: [DataA, DataA + 8, DataA + 16, DataA + 320, Edge - 8]);
    }

    [Fact]
    public void InlineAccesses_AtAndAcrossPageEnd_MatchInterpreter()
    {
        // Translated reads and writes take an inline TLB fast path only when the access stays inside its page:
        // accesses of every size at the last offsets of a page (fast) and straddling into the next one (the accessor)
        // must agree with the interpreter; the loop changes the data so stale values would show. The page after the boundary is
        // mapped elsewhere (linear 8 MiB -> physical 10 MiB), so an access that ran past its page on the host would
        // see or change other bytes (physical 8 MiB is compared too).
        const ulong Edge = DataA + 0x20_0000;
        RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(rsi, Edge);
                a.mov(ecx, 300);
                a.Label(ref loop);
                a.add(rbx, __qword_ptr[rsi - 8]);
                a.add(rbx, __qword_ptr[rsi - 7]);
                a.add(ebx, __dword_ptr[rsi - 4]);
                a.add(ebx, __dword_ptr[rsi - 3]);
                a.movzx(edx, __word_ptr[rsi - 2]);
                a.add(rbx, rdx);
                a.movzx(edx, __word_ptr[rsi - 1]);
                a.add(rbx, rdx);
                a.movzx(edx, __byte_ptr[rsi - 1]);
                a.add(rbx, rdx);
                a.rol(rbx, 5);
                a.mov(__qword_ptr[rsi - 8], rbx);
                a.mov(__qword_ptr[rsi], rcx);
                a.mov(__dword_ptr[rsi - 3], ebx);   // straddling stores: the accessor, never the inline path
                a.mov(__word_ptr[rsi - 1], cx);
                a.mov(__qword_ptr[rsi - 4], rdx);
                a.add(__byte_ptr[rsi - 1], cl);
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g =>
            {
                g.Write64(GuestHarness.Pd + (4 * 8), 0xA0_0000UL | 0x87);
                g.Write64(Edge - 8, 0x0123_4567_89AB_CDEFUL);
                g.Write64(0xA0_0000, 0xFEDC_BA98_7654_3210UL);
                g.Write64(Edge, 0x1111_2222_3333_4444UL);
            },
            compareAt: [Edge - 8, 0xA0_0000, Edge]);
    }

    [Fact]
    public void BswapAndUnpack_BetweenFlagWriterAndReader_MatchInterpreter()
    {
        // BSWAP and PUNPCKL* run in IL; a compare's flags stay live across them to the Jcc/ADC that reads them.
        RunBoth(a =>
        {
            var loop = a.CreateLabel();
            var skip = a.CreateLabel();
            a.mov(ecx, 200);
            a.mov(rax, 0x0102_0304_0506_0708UL);
            a.mov(rsi, DataA);
            a.Label(ref loop);
            a.cmp(eax, ecx);
            a.bswap(rax);
            a.bswap(edx);
            a.adc(rbx, rax);
            a.cmp(ebx, edx);
            a.bswap(r9);
            a.jb(skip);
            a.inc(r10);
            a.Label(ref skip);
            a.movq(xmm1, rax);
            a.movq(xmm2, rbx);
            a.punpcklbw(xmm1, xmm2);
            a.punpcklqdq(xmm3, xmm1);
            a.movdqa(__xmmword_ptr[rsi], xmm3);
            a.punpcklbw(xmm3, __xmmword_ptr[rsi]);
            a.movq(r11, xmm3);
            a.add(rdx, r11);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        }, compareAt: [DataA, DataA + 8]);
    }

    [Fact]
    public void UnpackHighLowAndPshufb_RegisterAndMemory_MatchInterpreter()
    {
        // PUNPCKL/H{BW,WD,DQ,QDQ} and PSHUFB (index bytes with bit 7 set give 0) in IL; every result folded into
        // GPRs and memory, which RunBoth compares with the interpreter.
        RunBoth(a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, 100);
            a.mov(rax, 0x0F8E_0D8C_0B0A_0908UL);
            a.mov(rbx, 0x8706_0504_0302_0100UL);
            a.mov(rsi, DataA);
            a.Label(ref loop);
            a.movq(xmm1, rax);
            a.movq(xmm2, rbx);
            a.punpcklqdq(xmm1, xmm2);
            a.movdqa(xmm2, xmm1);
            a.punpcklwd(xmm2, xmm1);
            a.movdqa(xmm3, xmm2);
            a.punpckhdq(xmm3, xmm1);
            a.movdqa(xmm4, xmm3);
            a.punpckldq(xmm4, xmm2);
            a.punpckhbw(xmm4, xmm1);
            a.punpckhwd(xmm3, xmm4);
            a.punpckhqdq(xmm2, xmm3);
            a.movdqa(__xmmword_ptr[rsi], xmm4);
            a.movdqa(__xmmword_ptr[rsi + 16], xmm1);
            a.pshufb(xmm2, xmm1);
            a.pshufb(xmm3, __xmmword_ptr[rsi + 16]);
            a.punpckhwd(xmm4, __xmmword_ptr[rsi]);
            a.punpcklwd(xmm1, __xmmword_ptr[rsi]);
            a.pxor(xmm2, xmm3);
            a.pxor(xmm2, xmm4);
            a.pxor(xmm2, xmm1);
            a.movq(r8, xmm2);
            a.punpckhqdq(xmm2, xmm2);
            a.movq(r9, xmm2);
            a.add(r10, r8);
            a.xor(r11, r9);
            a.movdqa(__xmmword_ptr[rsi + 32], xmm3);
            a.rol(rax, 3);
            a.add(rbx, rcx);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        }, compareAt: [DataA, DataA + 8, DataA + 32, DataA + 40]);
    }

    [Fact]
    public void IncDecMemory_InLoopThenFaulting_FlagsAndMemoryMatchInterpreter()
    {
        // INC/DEC m run in IL: results, CF kept from before, and an INC whose read succeeds but whose write faults
        // (a read-only page with CR0.WP set) must leave the flags of the instruction before it (the #PF handler
        // records RFLAGS and CR2).
        const ulong Handler = 0x2_0000;
        const ulong ReadOnly = 0xA0_0000; // 2 MiB page 5, remapped read-only below
        RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(rax, cr0);
                a.or(rax, 1 << 16);
                a.mov(cr0, rax);
                a.mov(ecx, 300);
                a.mov(rsi, ReadOnly);
                a.Label(ref loop);
                a.cmp(ecx, 150);
                a.inc(__dword_ptr[DataA]);
                a.adc(rbx, 0);
                a.dec(__byte_ptr[DataA + 5]);
                a.inc(__word_ptr[DataA + 6]);
                a.setb(dl);
                a.add(r8, rdx);
                a.dec(__qword_ptr[DataA + 8]);
                a.dec(ecx);
                a.jnz(loop);
                a.cmp(ecx, 1);
                a.inc(__qword_ptr[rsi]);
                a.hlt();
            },
            g =>
            {
                g.Code64(Handler, a =>
                {
                    a.pushfq();
                    a.pop(r15);
                    a.mov(r14, cr2);
                    a.hlt();
                });
                g.SetGate64(14, Handler);
                g.Write64(GuestHarness.Pd + (5 * 8), ReadOnly | 0x85);
                g.Write64(ReadOnly, 41);
                g.Write64(DataA, 0xFFFF_FF00_0000_FFF0UL);
                g.Write64(DataA + 8, 3);
            },
            compareAt: [DataA, DataA + 8, ReadOnly]);
    }

    [Fact]
    public void TranslationOff_HotLoop_NothingTranslatedAndCountsMatch()
    {
        // With translation off the batch loop runs without the translator's hook: no unit may be built or entered,
        // and the instruction count must still be exact (threshold 1 would translate the first execution if it ran).
        using var off = NewHarness(translate: false);
        off.SetupLongMode();
        off.Code64(GuestHarness.CodeBase, a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, 1000);
            a.xor(eax, eax);
            a.Label(ref loop);
            a.add(rax, rcx);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
        Assert.Equal(VcpuExitReason.Halted, off.Run().Reason);
        Assert.Equal(1000UL * 1001 / 2, off.State.Registers.Rax);
        Assert.Equal(0, off.Host.Stats.UnitsTranslated);
        Assert.Equal(0, off.Host.Stats.TranslatedInstructions);

        // 2 set-up instructions, 3 per iteration, and the HLT.
        Assert.Equal(2 + (3 * 1000) + 1, off.Vcpu.InstructionsExecuted);
    }

    [Fact]
    public void IndirectCallsAndJumps_RegisterAndMemory_MatchInterpreter()
    {
        RunBoth(a =>
        {
            var loop = a.CreateLabel();
            var f1 = a.CreateLabel();
            var f2 = a.CreateLabel();
            var done = a.CreateLabel();
            var fin = a.CreateLabel();
            a.lea(rax, __[f2]);
            a.mov(__qword_ptr[DataA], rax);
            a.lea(rax, __[done]);
            a.mov(__qword_ptr[DataA + 8], rax);
            a.mov(ecx, 20);
            a.Label(ref loop);
            a.lea(rax, __[f1]);
            a.call(rax);
            a.mov(rdx, DataA);
            a.call(__qword_ptr[rdx]);
            a.dec(ecx);
            a.jnz(loop);
            a.lea(rax, __[fin]);
            a.push(rax);
            a.jmp(__qword_ptr[DataA + 8]);   // -> done -> f1, which returns to fin
            a.Label(ref fin);
            a.hlt();
            a.Label(ref done);
            a.lea(rsi, __[f1]);
            a.jmp(rsi);
            a.Label(ref f1);
            a.add(rbx, 1);
            a.cmp(rbx, 3000);
            a.jae(f2);
            a.ret();
            a.Label(ref f2);
            a.add(rbx, 100);
            a.cmp(rbx, 3200);
            a.jb(done);
            a.hlt();
        });
    }

    [Fact]
    public void SelfModifyingLoop_PatchesOwnImmediate_MatchesInterpreter()
    {
        // The loop adds an immediate to RBX and then increments that immediate in the code: each iteration must see
        // the previous iteration's patch.
        var stats = RunBoth(a =>
        {
            var patch = a.CreateLabel();
            a.mov(rcx, 50);
            a.xor(ebx, ebx);
            a.lea(rdi, __[patch]);
            a.Label(ref patch);
            a.mov(eax, 0x1000);     // B8 imm32: the immediate is at patch + 1
            a.add(rbx, rax);
            a.add(__dword_ptr[rdi + 1], 1);
            a.dec(rcx);
            a.jnz(patch);
            a.hlt();
        });
        // The patching store ends its unit: a Store exit after it, or (a store to a page holding code misses the
        // inline TLB test) a Fallback exit that leaves it to the interpreter.
        Assert.True(stats.TranslationExits(5) + stats.TranslationExits(6) > 0, "the patching store did not end its unit");
    }

    [Fact]
    public void StoreIntoUnitPage_DataBesideCode_MatchesInterpreter()
    {
        var stats = RunBoth(a =>
        {
            var loop = a.CreateLabel();
            var data = a.CreateLabel();
            a.mov(rcx, 100);
            a.Label(ref loop);
            a.add(__qword_ptr[data], rcx);
            a.mov(rax, __qword_ptr[data]);
            a.dec(rcx);
            a.jnz(loop);
            a.hlt();
            a.Label(ref data);
            a.dq(0);
        });
        Assert.True(stats.TranslatedInstructions > 0);
    }

    [Fact]
    public void PageFaultOnThirdInstruction_RegistersFlagsRipCr2_MatchInterpreter()
    {
        const ulong handler = GuestHarness.CodeBase + 0x800;
        RunBoth(
            a =>
            {
                a.mov(rax, 5);
                a.add(rbx, rax);                 // flags from the second instruction must survive the fault
                a.mov(rcx, __qword_ptr[Unmapped]); // #PF here
                a.mov(rdx, 7);
                a.hlt();
            },
            g =>
            {
                g.Code64(handler, a =>
                {
                    a.mov(r15, __qword_ptr[rsp + 8]);   // faulting RIP from the frame
                    a.mov(r14, __qword_ptr[rsp + 24]);  // RFLAGS from the frame
                    a.mov(r13, __qword_ptr[rsp]);       // error code
                    a.hlt();
                });
                g.SetGate64(14, handler);
            });
    }

    [Fact]
    public void FaultInsideUnit_ResumesAfterHandler_MatchesInterpreter()
    {
        // A load faults inside a loop; the handler maps the page (PD entry) and IRETQs, and the loop finishes.
        const ulong handler = GuestHarness.CodeBase + 0x800;
        RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(rcx, 20);
                a.Label(ref loop);
                a.add(rbx, rcx);
                a.add(rbx, __qword_ptr[Unmapped + 0x10]);
                a.dec(rcx);
                a.jnz(loop);
                a.hlt();
            },
            g =>
            {
                g.Code64(handler, a =>
                {
                    // Map 1 GiB .. 1 GiB + 2 MiB to DataB through a second PD (PDPT entry 1).
                    a.mov(rax, GuestHarness.Pd + 0x1000UL | 0x7);
                    a.mov(__qword_ptr[GuestHarness.Pdpt + 8], rax);
                    a.mov(rax, DataB | 0x87);
                    a.mov(__qword_ptr[GuestHarness.Pd + 0x1000], rax);
                    a.inc(r12);
                    a.add(rsp, 8);
                    a.iretq();
                });
                g.SetGate64(14, handler);
                g.Write64(DataB + 0x10, 1000);
            });
    }

    [Fact]
    public void PageTableChange_InvlpgAndCr3Reload_UnitSeesNewMapping()
    {
        // The same translated function sums a value through one linear address before and after its page is remapped.
        var stats = RunBoth(
            a =>
            {
                var sum = a.CreateLabel();
                var loop = a.CreateLabel();
                a.xor(ebx, ebx);
                a.call(sum);
                a.mov(rax, DataB | 0x87);
                a.mov(__qword_ptr[GuestHarness.Pd + 3 * 8], rax);   // linear 6 MiB -> physical 8 MiB
                a.invlpg(__[DataA]);
                a.call(sum);
                a.mov(rax, 0xA0_0000UL | 0x87);
                a.mov(__qword_ptr[GuestHarness.Pd + 3 * 8], rax);   // linear 6 MiB -> physical 10 MiB
                a.mov(rax, cr3);
                a.mov(cr3, rax);
                a.call(sum);
                a.hlt();
                a.Label(ref sum);
                a.mov(ecx, 100);
                a.Label(ref loop);
                a.add(rbx, __qword_ptr[DataA]);
                a.dec(ecx);
                a.jnz(loop);
                a.ret();
            },
            g =>
            {
                g.Write64(DataA, 1);
                g.Write64(DataB, 1000);
                g.Write64(0xA0_0000, 1_000_000);
            });
        Assert.True(stats.TranslatedInstructions > 0);
    }

    [Fact]
    public void ChainedCallTarget_CodePageRemapped_LinkNotFollowed()
    {
        // A loop calls code at linear 6 MiB (a direct call to another page: a chained exit when units stay on their
        // page). Half-way, the page is remapped to physical 8 MiB, which holds different code: the remembered link
        // must not be taken.
        var stats = RunBoth(RemappedCalleeLoop, RemappedCalleeSetup);
        Assert.True(stats.TranslationExits(7) > 0, "no exit was chained");
    }

    [Fact]
    public void ChainedCallTarget_RemappedThenCr3Reload_LinkNotFollowed()
    {
        // As above, but the remap takes effect through a CR3 reload instead of INVLPG: the link's epoch is stale, the
        // (non-global) TLB entry is gone, so the link must be checked against the new translation, not renewed.
        var stats = RunBoth(a => RemappedCalleeLoop(a, cr3Reload: true), RemappedCalleeSetup);
        Assert.True(stats.TranslationExits(7) > 0, "no exit was chained");
    }

    [Fact]
    public void ChainedExits_AfterEveryCr3Reload_LinksRenewedNotExhausted()
    {
        // Every iteration reloads CR3 (what a context switch does): each link's epoch goes stale. Its page found again
        // in the TLB (refilled by the first fetch after the flush) or the same unit found again renews the link; it
        // must not count as a relink, or after MaxLinkUpdates (32) flushes the exits would stop chaining.
        const int iterations = 200;
        var stats = RunBoth(a =>
        {
            var loop = a.CreateLabel();
            a.xor(ebx, ebx);
            a.mov(ecx, iterations);
            a.Label(ref loop);
            a.call(DataA);
            a.add(ebx, eax);
            a.mov(rax, cr3);
            a.mov(cr3, rax);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        }, RemappedCalleeSetup);

        // Per iteration: the return from DataA finds its page refilled by the fetches after the flush and chains (the
        // call finds DataA's page flushed and renews its link through the lookup). Without renewal: none.
        Assert.True(stats.TranslationExits(7) > iterations / 2, $"chained exits {stats.TranslationExits(7)}");
    }

    [Fact]
    public void TracedCallTarget_CodePageRemapped_MatchesInterpreter()
    {
        // The same with traces: the callee's page is part of the caller's unit, entered through a guard.
        var stats = RunBoth(RemappedCalleeLoop, RemappedCalleeSetup, traces: true);
        Assert.True(stats.UnitsTranslated > 0);
    }

    private static void RemappedCalleeLoop(Assembler a) => RemappedCalleeLoop(a, cr3Reload: false);

    private static void RemappedCalleeLoop(Assembler a, bool cr3Reload)
    {
        var loop = a.CreateLabel();
        var skip = a.CreateLabel();
        a.xor(ebx, ebx);
        a.mov(ecx, 40);
        a.Label(ref loop);
        a.call(DataA);
        a.add(ebx, eax);
        a.cmp(ecx, 20);
        a.jne(skip);
        a.mov(rax, DataB | 0x87);
        a.mov(__qword_ptr[GuestHarness.Pd + 3 * 8], rax);   // linear 6 MiB -> physical 8 MiB
        if (cr3Reload)
        {
            a.mov(rax, cr3);
            a.mov(cr3, rax);
        }
        else
        {
            a.invlpg(__[DataA]);
        }

        a.Label(ref skip);
        a.dec(ecx);
        a.jnz(loop);
        a.hlt();
    }

    private static void RemappedCalleeSetup(GuestHarness g)
    {
        g.Code64(DataA, a =>
        {
            a.mov(eax, 1);
            a.ret();
        });
        g.Write(DataB, GuestHarness.Assemble(64, DataA, a =>
        {
            a.mov(eax, 1000);
            a.ret();
        }));
    }

    [Fact]
    public void TracedCallee_RewrittenByTheCaller_NewCodeRuns()
    {
        // The caller's loop calls a function on another page (inside its trace), and half-way rewrites that
        // function's immediate with a store from its own page: the store does not touch the unit's current page, so
        // only the guard on the next call edge (the callee page's generation) keeps the old code from running.
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                var skip = a.CreateLabel();
                a.xor(ebx, ebx);
                a.mov(ecx, 40);
                a.Label(ref loop);
                a.call(DataA);
                a.add(ebx, eax);
                a.cmp(ecx, 20);
                a.jne(skip);
                a.mov(__dword_ptr[DataA + 1], 1000);   // the callee's mov eax, imm32
                a.Label(ref skip);
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g => g.Code64(DataA, a =>
            {
                a.mov(eax, 1);
                a.ret();
            }),
            traces: true);
        Assert.True(stats.UnitsTranslated > 0);
    }

    [Fact]
    public void CalleePageWrittenBesideItsCode_UnitTakenOverNotRecompiled_RewriteStillSeen()
    {
        // The caller's loop calls a function on another page and stores into the data half of that page on every
        // iteration: each store bumps the page's generation and evicts the callee's unit at once (a chain link to it
        // must not be followed), and the next call takes the unit over for the new generation (its bytes are
        // unchanged) instead of translating it again. Half-way the caller rewrites the callee's immediate: those
        // bytes changed, so that unit is not taken over and the new code runs. The callee's REP STOSB (a helper call)
        // compares its page with the generation the unit was entered under, so it causes no store exits.
        const int Iterations = 40;
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                var skip = a.CreateLabel();
                a.xor(ebx, ebx);
                a.mov(ecx, Iterations);
                a.Label(ref loop);
                a.call(DataA);
                a.add(ebx, eax);
                a.cmp(ecx, Iterations / 2);
                a.jne(skip);
                a.mov(__dword_ptr[DataA + 1], 1000);   // the callee's mov eax, imm32
                a.Label(ref skip);
                a.mov(__qword_ptr[DataA + 0x800], rcx); // data on the callee's page
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g => g.Code64(DataA, a =>
            {
                a.mov(eax, 1);
                a.push(rcx);
                a.push(rax);
                a.mov(edi, (uint)DataB);
                a.mov(ecx, 24);
                a.rep.stosb();
                a.pop(rax);
                a.pop(rcx);
                a.ret();
            }),
            compareAt: [DataA + 0x800, DataB, DataB + 16]);
        Assert.True(stats.UnitsReused >= Iterations / 2, $"units taken over: {stats.UnitsReused}");
        Assert.True(stats.UnitsTranslated < Iterations / 2, $"units translated: {stats.UnitsTranslated}");
        Assert.Equal(0, stats.TranslationExits((int)Ringvisor.Emulator.Translation.TranslationExit.Store));
    }

    [Fact]
    public void TracedCallee_ReturnAddressReplaced_ReturnsWhereTheStackSays()
    {
        // Return prediction compares the popped address: a callee (on another page, in the caller's trace) that
        // replaces its return address must return there, not to the call's return site.
        RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                var elsewhere = a.CreateLabel();
                var next = a.CreateLabel();
                a.xor(ebx, ebx);
                a.xor(esi, esi);
                a.mov(ecx, 30);
                a.Label(ref loop);
                a.lea(rdx, __[elsewhere]);
                a.call(DataA);
                a.add(ebx, 1);                  // skipped when the callee redirects
                a.jmp(next);
                a.Label(ref elsewhere);
                a.add(esi, 1);
                a.Label(ref next);
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g => g.Code64(DataA, a =>
            {
                var keep = a.CreateLabel();
                a.test(cl, 1);
                a.jz(keep);
                a.mov(__qword_ptr[rsp], rdx);   // odd iterations return to 'elsewhere'
                a.Label(ref keep);
                a.ret();
            }),
            traces: true);
    }

    [Fact]
    public void LongLoop_BudgetExitsResumeAtTheLoopHead_ThroughTheSameUnit()
    {
        // A loop longer than a batch leaves its unit on a backward branch when the budget is spent; the next batch
        // enters the same code at the loop head (a side entry) instead of a second unit for it.
        var stats = RunBoth(a =>
        {
            var loop = a.CreateLabel();
            a.xor(eax, eax);
            a.mov(ecx, 200_000);
            a.Label(ref loop);
            a.add(eax, ecx);
            a.rol(eax, 3);
            a.xor(eax, 0x55);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
        Assert.True(stats.TranslationExits((int)Ringvisor.Emulator.Translation.TranslationExit.Budget) > 0, "no budget exit");
        Assert.Equal(1, stats.UnitsTranslated);
    }

    [Fact]
    public void EntryInsideAnotherUnitsCode_RegionStopsThere_NeitherOrderCompilesItTwice()
    {
        // Code S (three instructions, then a jump to X) and code X (nine) on one page, each called through a register
        // from a loop. Entered at S first, S's unit takes X too and X is its side entry. Entered at X first, X gets a
        // unit of its own and S's region stops where that unit is entered (its exit chains to it): either way each
        // instruction is compiled once.
        const ulong X = DataA;
        const ulong S = DataA + 0x80;
        BtStats Run(ulong first, ulong second) => RunBoth(
            a =>
            {
                a.xor(ebx, ebx);
                a.xor(esi, esi);
                EmitCallLoop(a, ecx, first, 3);
                EmitCallLoop(a, ecx, second, 3);
                a.hlt();
            },
            g =>
            {
                g.Code64(X, a =>
                {
                    for (int i = 1; i <= 8; i++)
                    {
                        a.add(esi, i);
                    }

                    a.ret();
                });
                g.Code64(S, a =>
                {
                    a.add(ebx, 1);
                    a.add(ebx, 2);
                    a.jmp(X);
                });
            });

        var sFirst = Run(S, X);
        var xFirst = Run(X, S);
        Assert.Equal(sFirst.UnitsTranslated + 1, xFirst.UnitsTranslated);
        Assert.Equal(sFirst.UnitInstructions, xFirst.UnitInstructions);
    }

    [Fact]
    public void TinyCacheBudget_FlushesEveryUnit_StillMatchesInterpreter()
    {
        var stats = RunBoth(
            a =>
            {
                var f1 = a.CreateLabel();
                var f2 = a.CreateLabel();
                var outer = a.CreateLabel();
                a.mov(r8, 30);
                a.Label(ref outer);
                a.call(f1);
                a.call(f2);
                a.dec(r8);
                a.jnz(outer);
                a.hlt();
                a.Label(ref f1);
                a.add(rbx, r8);
                a.ret();
                a.Label(ref f2);
                a.imul(rbx, rbx, 3);
                a.ret();
            },
            budget: 1);
        Assert.True(stats.TranslationCacheFlushes > 1, "the tiny budget did not flush the cache");
    }

    [Fact]
    public unsafe void CodeRewrittenBehindTheTracker_SetState_RunsTheNewCode()
    {
        // A loader or snapshot restore writes RAM without a code-page notification and then loads the vCPU state: the
        // page generation (and so the cache key) is unchanged, but the unit must not run the old bytes.
        using var g = NewHarness(translate: true);
        byte[] first = GuestHarness.Assemble(64, GuestHarness.CodeBase, a =>
        {
            a.mov(rax, 1);
            a.mov(rbx, 2);
            a.hlt();
        });
        byte[] second = GuestHarness.Assemble(64, GuestHarness.CodeBase, a =>
        {
            a.mov(rax, 7);
            a.mov(rbx, 9);
            a.hlt();
        });
        Assert.Equal(first.Length, second.Length);
        nint host = g.Memory.GetHostPointer(GuestHarness.CodeBase, (ulong)first.Length);
        Assert.NotEqual(0, host);

        g.SetupLongMode();
        first.CopyTo(new Span<byte>((void*)host, first.Length));
        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(1UL, g.State.Registers.Rax);

        // SAFETY: host maps the code bytes (checked above); this bypasses GuestMemory's write notification on purpose.
        second.CopyTo(new Span<byte>((void*)host, second.Length));
        g.SetupLongMode();
        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(7UL, g.State.Registers.Rax);
        Assert.Equal(9UL, g.State.Registers.Rbx);
        Assert.True(g.Host.Stats.UnitsTranslated >= 2, g.Host.Stats.Format());
    }

    [Fact]
    public void LongTranslatedLoop_Kick_ReturnsPromptly()
    {
        using var g = NewHarness(translate: true);
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.inc(rax);
            a.jmp(loop);
        });
        var kicker = new Thread(() =>
        {
            SpinWait.SpinUntil(() => g.Host.Stats.TranslatedInstructions > 100_000, 30_000);
            g.Vcpu.Kick();
        });
        kicker.Start();
        var exit = g.Run();
        kicker.Join();
        Assert.Equal(VcpuExitReason.Kicked, exit.Reason);
        Assert.True(g.Host.Stats.TranslatedInstructions > 0);
        Assert.True(g.Host.Stats.TranslationExits(3) > 0, "the loop never left through a budget/attention check");
        Assert.Equal((ulong)g.Vcpu.InstructionsExecuted / 2, g.State.Registers.Rax);
    }

    [Fact]
    public void BackgroundTranslation_HotLoop_RunsTranslatedWithConsistentState()
    {
        // The worker thread translates while the vCPU interprets; once the unit is in the cache the vCPU switches to it.
        using var g = new GuestHarness(null, new BtOptions { CollectStats = true, TranslationThreshold = 50, BackgroundTranslation = true });
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.inc(rax);
            a.add(rbx, 3);
            a.jmp(loop);
        });
        var kicker = new Thread(() =>
        {
            SpinWait.SpinUntil(() => g.Host.Stats.TranslatedInstructions > 100_000, 30_000);
            g.Vcpu.Kick();
        });
        kicker.Start();
        var exit = g.Run();
        kicker.Join();
        Assert.Equal(VcpuExitReason.Kicked, exit.Reason);
        Assert.True(g.Host.Stats.TranslatedInstructions > 100_000, g.Host.Stats.Format());
        var r = g.State.Registers;
        Assert.Equal(r.Rax * 3, r.Rbx);
        Assert.Equal((ulong)g.Vcpu.InstructionsExecuted, r.Rax * 3 - (r.Rip == GuestHarness.CodeBase ? 0UL : r.Rip == GuestHarness.CodeBase + 3 ? 2UL : 1UL));
    }

    [Fact]
    public void InterruptDuringTranslatedLoop_IsDeliveredInsideTheLoop()
    {
        const ulong handler = GuestHarness.CodeBase + 0x800;
        var apic = new FakeLocalApic();
        using var g = NewHarness(translate: true, apic: apic);
        g.SetupLongMode();
        ulong loopStart = 0;
        g.Code64(GuestHarness.CodeBase, a =>
        {
            var loop = a.CreateLabel();
            a.sti();
            a.nop();
            a.Label(ref loop);
            a.inc(rax);
            a.add(rbx, rax);
            a.jmp(loop);
        });
        g.Code64(handler, a =>
        {
            a.mov(r15, __qword_ptr[rsp]);  // interrupted RIP
            a.hlt();                       // IF = 0 in an interrupt gate: Run returns Halted
        });
        g.SetGate64(0x40, handler);
        loopStart = GuestHarness.CodeBase + 2;
        // Raise the interrupt once the loop runs translated (polling the counters, not the clock).
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
        Assert.InRange(s.R15, loopStart, loopStart + 16);
        Assert.True(g.Host.Stats.TranslatedInstructions > 100_000, g.Host.Stats.Format());
        Assert.Equal(1, apic.Acknowledged);
    }
}
