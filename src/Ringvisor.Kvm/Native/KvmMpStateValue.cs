// KVM_MP_STATE_* values (include/uapi/linux/kvm.h, Documentation/virt/kvm/api.rst "KVM_GET_MP_STATE").
namespace Ringvisor.Kvm.Native;

public enum KvmMpStateValue : uint
{
    Runnable = 0,

    /// <summary>An application processor waiting for INIT/SIPI (the in-kernel LAPIC handles them).</summary>
    Uninitialized = 1,

    InitReceived = 2,

    /// <summary>The vCPU executed HLT and waits in the kernel for an interrupt.</summary>
    Halted = 3,

    SipiReceived = 4,
}
