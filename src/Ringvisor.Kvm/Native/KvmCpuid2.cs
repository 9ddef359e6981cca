// struct kvm_cpuid2 (arch/x86/include/uapi/asm/kvm.h): header of a variable-length array of kvm_cpuid_entry2.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal struct KvmCpuid2
{
    public const int Size = 8;

    public uint Nent;
    private readonly uint _padding;
}
