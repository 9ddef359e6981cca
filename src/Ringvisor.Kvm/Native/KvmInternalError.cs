// KVM_INTERNAL_ERROR_* suberrors of kvm_run.internal.suberror (include/uapi/linux/kvm.h).
namespace Ringvisor.Kvm.Native;

public enum KvmInternalError : uint
{
    /// <summary>The in-kernel instruction emulator failed.</summary>
    Emulation = 1,

    /// <summary>An exception occurred while delivering another (triple-fault-like at the VMM level).</summary>
    SimultaneousException = 2,

    /// <summary>An event could not be delivered (e.g. the IDT/TSS is unusable).</summary>
    DeliveryEvent = 3,

    UnexpectedExitReason = 4,
}
