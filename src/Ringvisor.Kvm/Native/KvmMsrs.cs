// struct kvm_msrs (arch/x86/include/uapi/asm/kvm.h): header of a variable-length array of kvm_msr_entry.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal struct KvmMsrs
{
    public const int Size = 8;

    public uint Nmsrs;
    private readonly uint _pad;
}
