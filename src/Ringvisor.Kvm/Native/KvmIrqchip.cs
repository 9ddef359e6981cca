// struct kvm_irqchip (include/uapi/linux/kvm.h): argument of KVM_GET_IRQCHIP / KVM_SET_IRQCHIP, a chip id and a
// 512-byte union holding struct kvm_pic_state or struct kvm_ioapic_state (arch/x86/include/uapi/asm/kvm.h).
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmIrqchip
{
    public const int Size = 520;

    /// <summary>Offset of kvm_ioapic_state.irr inside the union (after base_address u64, ioregsel u32, id u32).</summary>
    public const int IoApicIrrOffset = 16;

    /// <summary>Offset of kvm_ioapic_state.redirtbl[0] inside the union (after irr u32, pad u32).</summary>
    public const int IoApicRedirectionTableOffset = 24;

    /// <summary>Offset of kvm_pic_state.elcr inside the union (after fourteen u8 fields, last_irr .. init4).</summary>
    public const int PicElcrOffset = 14;

    public uint ChipId;
    public uint Pad;
    public fixed byte Chip[512];
}
