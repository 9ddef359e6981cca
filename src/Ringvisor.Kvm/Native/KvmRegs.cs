// struct kvm_regs (arch/x86/include/uapi/asm/kvm.h): general-purpose registers, RIP, RFLAGS.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal struct KvmRegs
{
    public const int Size = 144;

    public ulong Rax, Rbx, Rcx, Rdx, Rsi, Rdi, Rsp, Rbp;
    public ulong R8, R9, R10, R11, R12, R13, R14, R15;
    public ulong Rip, Rflags;
}
