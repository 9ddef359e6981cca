// Directed exceptions at CPL 3: vector, error code, faulting RIP, CR2 and the state left behind must match the real
// CPU. #DE (DIV/IDIV), #UD (UD2, LOCK on a register, invalid-in-64-bit opcodes), #GP (privileged instructions,
// non-canonical addresses, misaligned MOVAPS), #PF (not present, read-only, supervisor page; reads, writes, fetches,
// page-split accesses), #SS (non-canonical stack references), #BP (INT3), #XM, and the known mismatch (x87 #MF)
// kept apart.
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class ExceptionCases
{
    public static IEnumerable<DiffCase> Directed()
    {
        var rng = new Random(7);
        DiffCase C(string name, Action<Assembler> body)
        {
            var c = DiffCase.Randomized(rng);
            c.Name = name;
            c.Body = body;
            c.Gpr[3] = DiffLayout.Data + 0x100; // RBX: a valid data pointer
            return c;
        }

        yield return C("div by zero", a => { a.xor(ecx, ecx); a.div(rcx); });
        yield return C("idiv8 by zero", a => { a.xor(ecx, ecx); a.idiv(cl); });
        yield return C("div32 quotient overflow", a => { a.mov(edx, 5); a.mov(ecx, 5); a.div(ecx); });
        yield return C("idiv64 INT_MIN / -1", a => { a.mov(rax, long.MinValue); a.cqo(); a.mov(rcx, -1L); a.idiv(rcx); });
        yield return C("idiv16 INT_MIN / -1", a => { a.mov(ax, unchecked((short)0x8000)); a.cwd(); a.mov(cx, -1); a.idiv(cx); });
        yield return C("ud2", a => a.ud2());
        yield return C("lock add reg", a => a.db(0xF0, 0x48, 0x01, 0xD8));
        yield return C("aaa (invalid in 64-bit mode)", a => a.db(0x37));
        yield return C("push es (invalid in 64-bit mode)", a => a.db(0x06));
        yield return C("hlt at CPL 3", a => a.hlt());
        yield return C("cli at CPL 3, IOPL 0", a => a.cli());
        yield return C("mov cr0 at CPL 3", a => a.mov(rax, cr0));
        yield return C("rdmsr at CPL 3", a => a.rdmsr());
        yield return C("wrmsr at CPL 3", a => a.wrmsr());
        yield return C("lgdt at CPL 3", a => a.lgdt(__[rbx]));
        yield return C("invlpg at CPL 3", a => a.invlpg(__[rbx]));
        yield return C("non-canonical read", a => { a.mov(rcx, 0x8000_0000_0000UL); a.mov(rax, __qword_ptr[rcx]); });
        yield return C("non-canonical write", a => { a.mov(rcx, 0xFFFF_7FFF_FFFF_FFF0UL); a.mov(__dword_ptr[rcx], eax); });
        yield return C("non-canonical jump target", a => { a.mov(rcx, 0x8000_0000_0000UL); a.jmp(rcx); });

        // A non-canonical reference through SS is #SS(0), not #GP(0) (SDM Vol. 3A §6.15, interrupt 12): pushes and
        // pops, and explicit operands whose base is RSP or RBP (SS is their default segment).
        yield return C("non-canonical stack push (#SS)", a => { a.mov(rsp, 0x8000_0000_0008UL); a.push(rax); });
        yield return C("non-canonical stack pop (#SS)", a => { a.mov(rsp, 0xFFFF_7FFF_FFFF_FFF8UL); a.pop(rcx); });
        yield return C("non-canonical [rbp] read (#SS)", a => { a.mov(rbp, 0x8000_0000_0000UL); a.mov(rax, __qword_ptr[rbp + 8]); });
        yield return C("non-canonical [rsp] write (#SS)", a => { a.mov(rsp, 0x9000_0000_0000UL); a.mov(__dword_ptr[rsp + 4], eax); });
        yield return C("movaps misaligned", a => { a.lea(rcx, __[rbx + 4]); a.movaps(xmm1, __xmmword_ptr[rcx]); });

        // INT n through a DPL-0 gate (#GP(n * 8 + 2)) is not compared: this host's KVM re-examines a #GP from guest
        // CPL-3 code with its instruction emulator, which turns it into #UD for INT n.
        yield return C("int3", a => a.int3());
        yield return C("int1 (icebp)", a => a.db(0xF1));
        yield return C("into (invalid in 64-bit mode)", a => a.db(0xCE));
        yield return C("read not-present page", a => { a.mov(rcx, DiffLayout.NotPresentPage + 0x10); a.mov(eax, __dword_ptr[rcx]); });
        yield return C("write not-present page", a => { a.mov(rcx, DiffLayout.NotPresentPage + 0x18); a.mov(__byte_ptr[rcx], al); });
        yield return C("write read-only page", a => { a.mov(rcx, DiffLayout.ReadOnlyPage + 0x20); a.add(__qword_ptr[rcx], rax); });
        yield return C("read supervisor page", a => { a.mov(rcx, DiffLayout.SupervisorPage + 0x30); a.mov(rax, __qword_ptr[rcx]); });
        yield return C("write supervisor page", a => { a.mov(rcx, DiffLayout.SupervisorPage + 0x38); a.mov(__qword_ptr[rcx], rax); });
        yield return C("fetch from not-present page", a => { a.mov(rcx, DiffLayout.NotPresentPage); a.call(rcx); });
        yield return C("fetch from supervisor page", a => { a.mov(rcx, DiffLayout.SupervisorPage); a.jmp(rcx); });
        yield return C("page-split write into read-only", a => { a.mov(rcx, DiffLayout.ReadOnlyPage - 4); a.mov(__qword_ptr[rcx], rax); });
        yield return C("page-split read into not-present", a => { a.mov(rcx, DiffLayout.NotPresentPage - 2); a.mov(eax, __dword_ptr[rcx]); });
        yield return C("sse with CR0.TS clear works; cvtsi2sd", a => a.cvtsi2sd(xmm3, rax));
        yield return C("unmasked SIMD exception (#XM)", a =>
        {
            a.mov(__dword_ptr[rbx], 0x1F80 & ~0x200); // divide-by-zero unmasked
            a.ldmxcsr(__dword_ptr[rbx]);
            a.xorps(xmm1, xmm1);
            a.mov(eax, 0x3F80_0000);
            a.movd(xmm0, eax);
            a.divss(xmm0, xmm1);
        });
        yield return C("unmasked x87 #Z: FDIVP leaves the stack, #MF on the next WAIT", a =>
        {
            a.mov(__word_ptr[rbx], 0x037F & ~0x4); // zero-divide unmasked
            a.fldcw(__word_ptr[rbx]);
            a.fld1();
            a.fldz();
            a.fdivp(st1, st0);
            a.wait();
        });
    }
}
