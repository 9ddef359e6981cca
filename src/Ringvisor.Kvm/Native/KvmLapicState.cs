// struct kvm_lapic_state (arch/x86/include/uapi/asm/kvm.h): the 1 KiB xAPIC register page image.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmLapicState
{
    public const int Size = 1024;

    public fixed byte Regs[Size];
}
