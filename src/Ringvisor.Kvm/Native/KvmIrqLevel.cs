// struct kvm_irq_level (include/uapi/linux/kvm.h): argument of KVM_IRQ_LINE (irq is the GSI).
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal struct KvmIrqLevel
{
    public const int Size = 8;

    public uint Irq;
    public uint Level;
}
