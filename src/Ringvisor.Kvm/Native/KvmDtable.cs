// struct kvm_dtable (arch/x86/include/uapi/asm/kvm.h): GDTR / IDTR.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmDtable
{
    public const int Size = 16;

    public ulong Base;
    public ushort Limit;
    private fixed ushort _padding[3];
}
