// struct kvm_irq_routing (include/uapi/linux/kvm.h): the header of KVM_SET_GSI_ROUTING's argument, followed in
// memory by nr entries of KvmIrqRoutingEntry (a flexible array, so the ioctl number encodes only these 8 bytes).
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal struct KvmIrqRouting
{
    public const int Size = 8;

    public uint Nr;
    public uint Flags;
}
