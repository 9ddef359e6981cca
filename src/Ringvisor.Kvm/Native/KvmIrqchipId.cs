// KVM_IRQCHIP_* (arch/x86/include/uapi/asm/kvm.h): the in-kernel interrupt controllers a GSI route or
// KVM_GET_IRQCHIP names.
namespace Ringvisor.Kvm.Native;

public enum KvmIrqchipId
{
    /// <summary>The master 8259 (ISA IRQs 0-7).</summary>
    PicMaster = 0,

    /// <summary>The slave 8259 (ISA IRQs 8-15), cascaded into master input 2.</summary>
    PicSlave = 1,

    /// <summary>The 24-pin IOAPIC.</summary>
    IoApic = 2,
}
