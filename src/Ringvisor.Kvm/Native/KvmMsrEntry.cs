// struct kvm_msr_entry (arch/x86/include/uapi/asm/kvm.h).
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal struct KvmMsrEntry
{
    public const int Size = 16;

    public uint Index;
    private readonly uint _reserved;
    public ulong Data;
}
