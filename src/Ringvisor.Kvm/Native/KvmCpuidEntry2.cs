// struct kvm_cpuid_entry2 (arch/x86/include/uapi/asm/kvm.h): one CPUID leaf/subleaf and its output registers.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmCpuidEntry2
{
    public const int Size = 40;

    /// <summary>KVM_CPUID_FLAG_SIGNIFCANT_INDEX: the entry applies only to ECX == Index.</summary>
    public const uint FlagSignificantIndex = 1 << 0;

    public uint Function;
    public uint Index;
    public uint Flags;
    public uint Eax, Ebx, Ecx, Edx;
    private fixed uint _padding[3];
}
