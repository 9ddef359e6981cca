// struct kvm_irq_routing_entry (include/uapi/linux/kvm.h): one GSI -> interrupt-controller-input route of
// KVM_SET_GSI_ROUTING. Only the irqchip member of the union is described (type KVM_IRQ_ROUTING_IRQCHIP); the union
// is 32 bytes (its __u32 pad[8]) after a 16-byte head, so an entry is 48 bytes.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct KvmIrqRoutingEntry
{
    public const int Size = 48;

    /// <summary>KVM_IRQ_ROUTING_IRQCHIP: the GSI drives a pin of the in-kernel PIC or IOAPIC.</summary>
    public const uint TypeIrqchip = 1;

    [FieldOffset(0)]
    public uint Gsi;

    [FieldOffset(4)]
    public uint Type;

    [FieldOffset(8)]
    public uint Flags;

    // Offset 12: __u32 pad.

    /// <summary>u.irqchip.irqchip: a <see cref="KvmIrqchipId"/>.</summary>
    [FieldOffset(16)]
    public uint Irqchip;

    /// <summary>u.irqchip.pin.</summary>
    [FieldOffset(20)]
    public uint Pin;
}
