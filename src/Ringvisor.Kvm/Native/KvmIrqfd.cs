// struct kvm_irqfd (include/uapi/linux/kvm.h): an eventfd whose signal injects a GSI without leaving the kernel.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmIrqfd
{
    public const int Size = 32;

    /// <summary>KVM_IRQFD_FLAG_DEASSIGN.</summary>
    public const uint FlagDeassign = 1 << 0;

    public uint Fd;
    public uint Gsi;
    public uint Flags;
    public uint Resamplefd;
    private fixed byte _pad[16];
}
