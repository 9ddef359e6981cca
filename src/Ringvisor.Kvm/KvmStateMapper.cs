// Maps Core's engine-neutral CpuState onto KVM's kvm_regs / kvm_sregs and back. The shapes match field for field
// (Core's types were modelled on them); only booleans and the APIC base need care.
using Ringvisor.Core.Cpu;
using Ringvisor.Kvm.Native;

namespace Ringvisor.Kvm;

internal static class KvmStateMapper
{
    /// <summary>FNINIT's control word: all exceptions masked, 64-bit precision (Intel SDM Vol. 1 §8.1.5).</summary>
    public const ushort FpuControlWordReset = 0x037F;

    /// <summary>MXCSR power-up value: all SIMD exceptions masked (Intel SDM Vol. 1 §10.2.3).</summary>
    public const uint MxcsrReset = 0x1F80;

    public static KvmRegs ToKvm(in CpuRegisters r) => new()
    {
        Rax = r.Rax, Rbx = r.Rbx, Rcx = r.Rcx, Rdx = r.Rdx, Rsi = r.Rsi, Rdi = r.Rdi, Rsp = r.Rsp, Rbp = r.Rbp,
        R8 = r.R8, R9 = r.R9, R10 = r.R10, R11 = r.R11, R12 = r.R12, R13 = r.R13, R14 = r.R14, R15 = r.R15,
        Rip = r.Rip,
        Rflags = r.Rflags | CpuRegisters.RflagsReserved,
    };

    public static CpuRegisters FromKvm(in KvmRegs r) => new()
    {
        Rax = r.Rax, Rbx = r.Rbx, Rcx = r.Rcx, Rdx = r.Rdx, Rsi = r.Rsi, Rdi = r.Rdi, Rsp = r.Rsp, Rbp = r.Rbp,
        R8 = r.R8, R9 = r.R9, R10 = r.R10, R11 = r.R11, R12 = r.R12, R13 = r.R13, R14 = r.R14, R15 = r.R15,
        Rip = r.Rip,
        Rflags = r.Rflags,
    };

    public static KvmSegment ToKvm(in SegmentRegister s) => new()
    {
        Base = s.Base,
        Limit = s.Limit,
        Selector = s.Selector,
        Type = s.Type,
        Present = B(s.Present),
        Dpl = s.Dpl,
        Db = B(s.DefaultBig),
        S = B(s.CodeOrData),
        L = B(s.Long),
        G = B(s.Granularity),
        Avl = B(s.Available),
        Unusable = B(s.Unusable),
    };

    public static SegmentRegister FromKvm(in KvmSegment s) => new()
    {
        Base = s.Base,
        Limit = s.Limit,
        Selector = s.Selector,
        Type = s.Type,
        Present = s.Present != 0,
        Dpl = s.Dpl,
        DefaultBig = s.Db != 0,
        CodeOrData = s.S != 0,
        Long = s.L != 0,
        Granularity = s.G != 0,
        Available = s.Avl != 0,
        Unusable = s.Unusable != 0,
    };

    /// <summary>
    /// Fills <paramref name="k"/> from <paramref name="s"/>. The pending-interrupt bitmap is left as the caller read
    /// it. An APIC base of 0 keeps the vCPU's current one: a CpuState built field by field would otherwise disable
    /// the in-kernel LAPIC. The BSP flag (IA32_APIC_BASE bit 8, Intel SDM Vol. 3A §10.4.4) stays with vCPU 0.
    /// </summary>
    public static void ToKvm(in SystemRegisters s, ref KvmSregs k, int vcpuIndex)
    {
        k.Cs = ToKvm(s.Cs);
        k.Ds = ToKvm(s.Ds);
        k.Es = ToKvm(s.Es);
        k.Fs = ToKvm(s.Fs);
        k.Gs = ToKvm(s.Gs);
        k.Ss = ToKvm(s.Ss);
        k.Tr = ToKvm(s.Tr);
        k.Ldt = ToKvm(s.Ldt);
        k.Gdt = new KvmDtable { Base = s.Gdt.Base, Limit = s.Gdt.Limit };
        k.Idt = new KvmDtable { Base = s.Idt.Base, Limit = s.Idt.Limit };
        k.Cr0 = s.Cr0;
        k.Cr2 = s.Cr2;
        k.Cr3 = s.Cr3;
        k.Cr4 = s.Cr4;
        k.Cr8 = s.Cr8;
        k.Efer = s.Efer;
        if (s.ApicBase != 0)
        {
            const ulong apicBaseBsp = 1UL << 8;
            k.ApicBase = vcpuIndex == 0 ? s.ApicBase : s.ApicBase & ~apicBaseBsp;
        }
    }

    public static SystemRegisters FromKvm(in KvmSregs k) => new()
    {
        Cs = FromKvm(k.Cs),
        Ds = FromKvm(k.Ds),
        Es = FromKvm(k.Es),
        Fs = FromKvm(k.Fs),
        Gs = FromKvm(k.Gs),
        Ss = FromKvm(k.Ss),
        Tr = FromKvm(k.Tr),
        Ldt = FromKvm(k.Ldt),
        Gdt = new DescriptorTable { Base = k.Gdt.Base, Limit = k.Gdt.Limit },
        Idt = new DescriptorTable { Base = k.Idt.Base, Limit = k.Idt.Limit },
        Cr0 = k.Cr0,
        Cr2 = k.Cr2,
        Cr3 = k.Cr3,
        Cr4 = k.Cr4,
        Cr8 = k.Cr8,
        Efer = k.Efer,
        ApicBase = k.ApicBase,
    };

    /// <summary>The x87/SSE state after RESET/FNINIT: empty stack, masked exceptions.</summary>
    public static KvmFpu ResetFpu() => new() { Fcw = FpuControlWordReset, Mxcsr = MxcsrReset };

    private static byte B(bool b) => b ? (byte)1 : (byte)0;
}
