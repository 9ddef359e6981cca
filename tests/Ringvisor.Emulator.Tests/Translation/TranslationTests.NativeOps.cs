// Directed tests of the forms the translator emits as IL instead of helper calls (UnitCompiler.Native.cs) and of the
// inline 16-byte SSE accesses: each program runs interpreted and translated (RunBoth) and must end in the same state,
// flags included; the flags each form leaves are read by the instructions after it inside the unit (SETcc, ADC, Jcc,
// CMOVcc) and by PUSHFQ, and the faults (#DE, #PF on the memory operand) are recorded by handlers.
using Ringvisor.Emulator.Tests.Interpreter;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Translation;

public sealed partial class TranslationTests
{
    private const ulong FaultHandler = 0x2_0000;
    private const ulong ReadOnlyPage = 0xA0_0000; // 2 MiB page 5, mapped read-only by MapReadOnly

    // Where the handler records the fault (registers stay as the fault left them): RFLAGS inside the handler, CR2,
    // the frame's RIP, RFLAGS and error code (CS when there is none).
    private const ulong FaultRecord = DataB + 0x1F_0000;
    private static readonly ulong[] s_faultRecord = [FaultRecord, FaultRecord + 8, FaultRecord + 16, FaultRecord + 24, FaultRecord + 32];

    /// <summary>A handler for <paramref name="vector"/> that records the fault at <see cref="FaultRecord"/> and halts.</summary>
    private static void RecordingHandler(GuestHarness g, int vector, bool errorCode)
    {
        int e = errorCode ? 8 : 0;
        g.Code64(FaultHandler, a =>
        {
            a.push(rax);
            a.pushfq();
            a.pop(rax);
            a.mov(__qword_ptr[FaultRecord], rax);
            a.mov(rax, cr2);
            a.mov(__qword_ptr[FaultRecord + 8], rax);
            a.mov(rax, __qword_ptr[rsp + 8 + e]);
            a.mov(__qword_ptr[FaultRecord + 16], rax);
            a.mov(rax, __qword_ptr[rsp + 24 + e]);
            a.mov(__qword_ptr[FaultRecord + 24], rax);
            a.mov(rax, __qword_ptr[rsp + 8 + (errorCode ? 0 : 8)]);
            a.mov(__qword_ptr[FaultRecord + 32], rax);
            a.pop(rax);
            a.hlt();
        });
        g.SetGate64(vector, FaultHandler);
    }

    /// <summary>Every unit compiled (a rejected one would leave everything to the interpreter) and none of
    /// <paramref name="mnemonics"/> ran as a helper call (the sample counts every 64th helper call, so a loop of a few
    /// hundred rounds shows a form that still goes through the interpreter).</summary>
    private static void AssertNoHelperCalls(BtStats stats, params string[] mnemonics)
    {
        foreach (string m in mnemonics)
        {
            Assert.False(stats.HelperMnemonics.ContainsKey(m), $"{m} ran as a helper call");
        }
    }

    private static void MapReadOnly(GuestHarness g) => g.Write64(GuestHarness.Pd + (5 * 8), ReadOnlyPage | 0x85);

    /// <summary>Enables CR0.WP so supervisor writes to the read-only page fault.</summary>
    private static void EnableWriteProtect(Iced.Intel.Assembler a)
    {
        a.mov(rax, cr0);
        a.or(rax, 1 << 16);
        a.mov(cr0, rax);
    }

    [Fact]
    public void MulAndDivide_AllSizesRegisterAndMemory_ThenDivideByZero_MatchInterpreter()
    {
        // MUL/IMUL/DIV/IDIV r/m in IL: results in RAX/RDX (AX for bytes), MUL/IMUL's eager flags read by SETcc/ADC,
        // DIV leaving the flags of the instruction before it; then DIV by zero raises #DE at the instruction with the
        // flags of the CMP before it.
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(ecx, 150);
                a.mov(rsi, DataA);
                a.mov(r8, 0x9234_5678_9ABC_DEF1UL);
                a.Label(ref loop);
                a.mov(r9, rcx);
                a.imul(r9, r9, 0x1_0001);
                a.add(r9, 3);
                a.mov(__qword_ptr[rsi], r9);
                a.mov(rax, r8);
                a.mov(rdx, rcx);
                a.cmp(ecx, 70);
                a.div(r9);                          // RDX < divisor: no #DE
                a.setb(bl);
                a.add(r10, rax);
                a.adc(r10, rdx);
                a.mov(rax, r8);
                a.cqo();
                a.idiv(__qword_ptr[rsi]);
                a.add(r10, rax);
                a.xor(r10, rdx);
                a.mov(eax, r8d);
                a.xor(edx, edx);
                a.div(__dword_ptr[rsi]);
                a.add(r10, rax);
                a.mov(ax, r8w);
                a.cwd();
                a.idiv(r9w);
                a.movzx(edx, dx);
                a.add(r10, rdx);
                a.mov(ax, cx);
                a.div(__byte_ptr[rsi]);
                a.movzx(eax, ax);
                a.add(r10, rax);
                a.mov(rax, r8);
                a.mul(rcx);
                a.seto(bl);
                a.add(r11, rbx);
                a.adc(r11, rdx);
                a.mov(rax, r8);
                a.imul(__qword_ptr[rsi]);
                a.setc(bl);
                a.sets(bh);
                a.add(r11, rbx);
                a.xor(r11, rdx);
                a.mov(eax, ecx);
                a.imul(r8d);
                a.setp(bl);
                a.adc(r11, rbx);
                a.mov(al, cl);
                a.mul(__byte_ptr[rsi]);
                a.setz(bl);
                a.add(r11, rax);
                a.mov(ax, r8w);
                a.imul(cx);
                a.cmovo(r12, rdx);
                a.rol(r8, 5);
                a.xor(r8, rcx);
                a.dec(ecx);
                a.jnz(loop);
                a.pushfq();
                a.pop(r13);
                a.xor(r9d, r9d);
                a.cmp(r8, r13);
                a.div(r9);                          // #DE
                a.hlt();
            },
            g => RecordingHandler(g, 0, errorCode: false),
            compareAt: [DataA, .. s_faultRecord]);
        Assert.True(stats.ExceptionCount(0) > 0, "the fault was not raised");
        AssertNoHelperCalls(stats, "Mul", "Imul", "Div", "Idiv");
    }

    [Fact]
    public void SignedDivideOverflow_MidLoop_RaisesDivideErrorAtTheInstruction()
    {
        // IDIV whose quotient leaves the signed range (INT_MIN / -1 in the last iteration, a large dividend before it
        // only when the count says so) is left to the interpreter: RIP, flags and registers at the #DE must be those
        // before the instruction.
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(ecx, 100);
                a.Label(ref loop);
                a.mov(eax, ecx);
                a.shl(eax, 24);
                a.cdq();
                a.lea(r9d, __[rcx + 0x100]);
                a.mov(ebx, 0x8000_0000);
                a.mov(r14d, -1);
                a.cmp(ecx, 1);
                a.cmove(eax, ebx);                  // INT_MIN / -1 when ECX = 1
                a.cmove(edx, r14d);
                a.cmove(r9d, r14d);
                a.cmp(r9d, 0);
                a.idiv(r9d);
                a.add(r10d, eax);
                a.adc(r11d, edx);
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g => RecordingHandler(g, 0, errorCode: false),
            compareAt: s_faultRecord);
        Assert.True(stats.ExceptionCount(0) > 0, "the fault was not raised");
        AssertNoHelperCalls(stats, "Idiv");
    }

    [Fact]
    public void BitScanAndBitTest_RegisterAndMemory_FlagsReadAfter_MatchInterpreter()
    {
        // BSF/BSR/TZCNT/LZCNT with zero and non-zero sources (a zero source leaves the destination, even a 32-bit one,
        // unchanged and sets ZF); BT/BTS/BTR/BTC r,r / r,imm / m,imm with CF read by JC, SETC, ADC and CMOVC, the other
        // flags kept from the instruction before (materialised).
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                var skip = a.CreateLabel();
                a.mov(ecx, 200);
                a.mov(rsi, DataA);
                a.mov(r8, 0x0000_0100_0040_0000UL);
                a.mov(rdi, -1L);
                a.Label(ref loop);
                a.mov(rax, rcx);
                a.and(eax, 7);
                a.shl(rax, 29);
                a.mov(__qword_ptr[rsi], rax);
                a.bsf(rbx, rax);
                a.setz(dl);
                a.add(r9, rbx);
                a.bsr(edi, eax);                    // zero source every 8th round: RDI's upper half stays
                a.setnz(dh);
                a.add(r9, rdi);
                a.tzcnt(r10, __qword_ptr[rsi]);
                a.adc(r9, r10);
                a.lzcnt(r10d, __dword_ptr[rsi + 4]);
                a.add(r9, r10);
                a.bsf(bx, cx);
                a.add(r9w, bx);
                a.cmp(ecx, 100);
                a.bt(r8, rcx);
                a.jc(skip);
                a.inc(r11);
                a.Label(ref skip);
                a.bts(r8, rcx);
                a.setc(bl);
                a.adc(r11, rbx);
                a.cmp(r8, rcx);
                a.btr(r8d, 13);
                a.seta(bl);                         // ZF/CF mix: the CMP's ZF, BTR's CF
                a.add(r11, rbx);
                a.btc(rdi, rcx);
                a.cmovc(r12, rdi);
                a.bts(__dword_ptr[rsi + 8], 3);
                a.btr(__qword_ptr[rsi + 16], 40);
                a.btc(__word_ptr[rsi + 24], 17);
                a.bt(__qword_ptr[rsi + 8], 3);
                a.adc(r11, 0);
                a.xor(__qword_ptr[rsi + 16], rcx);
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            compareAt: [DataA, DataA + 8, DataA + 16, DataA + 24]);
        AssertNoHelperCalls(stats, "Bsf", "Bsr", "Tzcnt", "Lzcnt", "Bt", "Bts", "Btr", "Btc");
    }

    [Fact]
    public void BitTestMemory_WriteToReadOnlyPage_FaultsWithOldFlagsAndNothingWritten()
    {
        // BTS m,imm reads, then its write faults (read-only page, CR0.WP): the #PF frame must carry the flags of the
        // instruction before it and the memory must be unchanged.
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                EnableWriteProtect(a);
                a.mov(ecx, 60);
                a.mov(rsi, ReadOnlyPage);
                a.Label(ref loop);
                a.bts(__dword_ptr[DataA], 5);
                a.adc(rbx, rcx);
                a.bt(__qword_ptr[rsi], 1);
                a.adc(rbx, 0);
                a.dec(ecx);
                a.jnz(loop);
                a.cmp(ecx, 1);
                a.bts(__qword_ptr[rsi], 7);
                a.hlt();
            },
            g =>
            {
                RecordingHandler(g, 14, errorCode: true);
                MapReadOnly(g);
                g.Write64(ReadOnlyPage, 0x41);
            },
            compareAt: [DataA, ReadOnlyPage, .. s_faultRecord]);
        Assert.True(stats.ExceptionCount(14) > 0, "the fault was not raised");
        AssertNoHelperCalls(stats);
    }

    [Fact]
    public void CmpxchgAndXadd_RegisterAndMemory_SuccessFailureAndFirstTouch_MatchInterpreter()
    {
        // CMPXCHG/XADD without LOCK: register forms, memory forms in a page written before (host access through the
        // TLB's write tag) and in a page first touched by the instruction itself (no write tag yet: the helper), in
        // every size; the lazy SUB/ADD flags are read by Jcc/SETcc/ADC after them.
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                var skip = a.CreateLabel();
                a.mov(ecx, 120);
                a.mov(rsi, DataA);
                a.mov(rdi, DataB);
                a.Label(ref loop);
                a.mov(rax, r8);
                a.lea(rdx, __[r8 + 1]);
                a.cmpxchg(__qword_ptr[rsi], rdx);    // succeeds while the slot holds R8
                a.jne(skip);
                a.inc(r8);
                a.Label(ref skip);
                a.cmovne(r8, rax);                  // resynchronised after a failure
                a.setb(bl);
                a.add(r9, rbx);
                a.add(r9, rax);
                a.mov(eax, ecx);
                a.cmpxchg(__dword_ptr[rdi + 0x808], r8d);
                a.adc(r9, rax);
                a.mov(ax, cx);
                a.cmpxchg(__word_ptr[rsi + 8], dx);
                a.setl(bl);
                a.add(r9, rbx);
                a.mov(al, 7);
                a.cmpxchg(__byte_ptr[rsi + 10], cl);
                a.sete(bl);
                a.add(r9, rbx);
                a.mov(rax, r9);
                a.cmpxchg(r10, r11);
                a.cmpxchg(eax, edx);
                a.setz(bl);
                a.add(r9, rbx);
                a.mov(r11, rcx);
                a.xadd(__qword_ptr[rsi + 16], r11);
                a.adc(r9, r11);
                a.xadd(__dword_ptr[rdi + 0x1000], r11d);
                a.seto(bl);
                a.add(r9, rbx);
                a.xadd(__byte_ptr[rsi + 24], r11b);
                a.xadd(r12, r11);
                a.xadd(r13d, r13d);
                a.sets(bl);
                a.add(r9, rbx);
                a.test(cl, 3);
                a.setz(bl);
                a.add(__qword_ptr[rsi], rbx);       // every fourth round the next CMPXCHG fails
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g =>
            {
                g.Write64(DataA, 0);
                g.Write64(DataA + 8, 0x1234);
            },
            compareAt: [DataA, DataA + 8, DataA + 16, DataA + 24, DataB + 0x808, DataB + 0x1000]);
        AssertNoHelperCalls(stats);
    }

    [Fact]
    public void CmpxchgMemory_ReadOnlyPage_WriteFaultFromTheInterpreter_MatchesInterpreter()
    {
        // A CMPXCHG to a read-only page faults as a write even when the compare fails (the error code says so); the
        // translated form must leave that to the interpreter's own access.
        var stats = RunBoth(
            a =>
            {
                EnableWriteProtect(a);
                a.mov(rsi, ReadOnlyPage);
                a.mov(eax, 5);
                a.mov(ecx, 300);
                a.cmp(eax, ecx);
                a.cmpxchg(__dword_ptr[rsi], ecx);
                a.hlt();
            },
            g =>
            {
                RecordingHandler(g, 14, errorCode: true);
                MapReadOnly(g);
                g.Write64(ReadOnlyPage, 41);
            },
            compareAt: [ReadOnlyPage, .. s_faultRecord]);
        Assert.True(stats.ExceptionCount(14) > 0, "the fault was not raised");
        AssertNoHelperCalls(stats);
    }

    [Fact]
    public void ShiftDoubleAndHighByteAlu_FlagsReadAfter_MatchInterpreter()
    {
        // SHLD/SHRD r,r,imm (counts 0, 1 and wide, 32-bit zero-extension at count 0) with CF/OF read after; 8-bit
        // ALU/TEST/MOV on AH/CH/DH/BH mixed with low bytes, ADC/SBB reading the carry.
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(r14d, 200);                   // the count: CH is an operand below
                a.mov(rax, 0x8123_4567_89AB_CDEFUL);
                a.mov(rdx, 0x0FED_CBA9_8765_4321UL);
                a.Label(ref loop);
                a.shld(rax, rdx, 7);
                a.setc(bl);
                a.seto(bh);
                a.add(r8, rbx);
                a.shrd(r9, rax, 63);
                a.adc(r8, r9);
                a.shld(r10d, edx, 0);
                a.shrd(r10d, eax, 1);
                a.seto(bl);
                a.add(r8, rbx);
                a.shld(r11d, r9d, 31);
                a.cmovc(r12, r11);
                a.test(ah, 0x40);
                a.setnz(bl);
                a.add(r8, rbx);
                a.and(dh, 0x0F);
                a.sets(bl);
                a.or(bh, cl);
                a.add(ch, ah);
                a.adc(r8, rbx);
                a.sub(dh, bl);
                a.sbb(ah, dh);
                a.setb(bl);
                a.xor(al, bh);
                a.cmp(ch, 0x10);
                a.seta(bl);
                a.add(r8, rbx);
                a.mov(ch, al);
                a.mov(dl, bh);
                a.adc(r13, rcx);
                a.rol(rdx, 3);
                a.dec(r14d);
                a.jnz(loop);
                a.hlt();
            });
        AssertNoHelperCalls(stats, "Shld", "Shrd", "Test", "And", "Or", "Add", "Sub", "Sbb", "Xor", "Cmp", "Mov");
    }

    [Fact]
    public void Sse16ByteAccesses_InPageAndReadOnly_StoreFaultsWithNothingWritten()
    {
        // 16-byte loads and stores inside a page take the inline TLB path; the store to a read-only page (CR0.WP) must
        // still raise #PF and write nothing, and a misaligned MOVAPS still raises #GP (from the interpreter).
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                EnableWriteProtect(a);
                a.mov(rsi, DataA);
                a.mov(ecx, 100);
                a.mov(rax, 0x1122_3344_5566_7788UL);
                a.movq(xmm0, rax);
                a.pshufd(xmm0, xmm0, 0x1B);
                a.Label(ref loop);
                a.movdqu(__xmmword_ptr[rsi + rcx * 8 + 5], xmm0);
                a.movdqa(xmm1, __xmmword_ptr[rsi + 0x400]);
                a.paddq(xmm0, xmm1);
                a.movaps(__xmmword_ptr[rsi + 0x400], xmm0);
                a.movdqu(xmm2, __xmmword_ptr[rsi + rcx * 4 + 3]);
                a.pxor(xmm0, xmm2);
                a.movdqu(xmm3, __xmmword_ptr[ReadOnlyPage + 8]);
                a.paddd(xmm0, xmm3);
                a.dec(ecx);
                a.jnz(loop);
                a.movq(r8, xmm0);
                a.cmp(r8, rcx);
                a.movdqu(__xmmword_ptr[ReadOnlyPage + 0x10], xmm0);
                a.hlt();
            },
            g =>
            {
                RecordingHandler(g, 14, errorCode: true);
                MapReadOnly(g);
                g.Write64(ReadOnlyPage + 8, 0x0101_0101_0101_0101UL);
                g.Write64(ReadOnlyPage + 0x10, 0x5A5A_5A5A_5A5A_5A5AUL);
                g.Write64(ReadOnlyPage + 0x18, 0xA5A5_A5A5_A5A5_A5A5UL);
            },
            compareAt: [DataA + 0x400, DataA + 0x408, DataA + 40, DataA + 800, ReadOnlyPage + 0x10, ReadOnlyPage + 0x18, .. s_faultRecord]);
        Assert.True(stats.ExceptionCount(14) > 0, "the fault was not raised");
        AssertNoHelperCalls(stats);
    }

    [Fact]
    public void SseMisalignedMovaps_InTranslatedLoop_RaisesGeneralProtection()
    {
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(rsi, DataA);
                a.mov(ecx, 50);
                a.Label(ref loop);
                a.movaps(xmm1, __xmmword_ptr[rsi]);
                a.paddd(xmm0, xmm1);
                a.movaps(__xmmword_ptr[rsi + 16], xmm0);
                a.cmp(ecx, 3);
                a.adc(rsi, 0);                      // misaligned from ECX = 1 on
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g => RecordingHandler(g, 13, errorCode: true),
            compareAt: [DataA + 16, DataA + 24, .. s_faultRecord]);
        Assert.True(stats.ExceptionCount(13) > 0, "the fault was not raised");
        AssertNoHelperCalls(stats);
    }
}
