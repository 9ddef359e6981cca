// struct kvm_sregs (arch/x86/include/uapi/asm/kvm.h): segments, descriptor tables, control registers, EFER,
// APIC base, and the bitmap of a pending external interrupt.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmSregs
{
    public const int Size = 312;

    public KvmSegment Cs, Ds, Es, Fs, Gs, Ss;
    public KvmSegment Tr, Ldt;
    public KvmDtable Gdt, Idt;
    public ulong Cr0, Cr2, Cr3, Cr4, Cr8;
    public ulong Efer;
    public ulong ApicBase;

    /// <summary>KVM_NR_INTERRUPTS (256) bits: at most one set, the vector of a pending external interrupt.</summary>
    public fixed ulong InterruptBitmap[4];
}
