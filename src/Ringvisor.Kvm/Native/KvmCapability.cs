// KVM_CAP_* extension numbers for KVM_CHECK_EXTENSION (include/uapi/linux/kvm.h).
namespace Ringvisor.Kvm.Native;

public enum KvmCapability
{
    Irqchip = 0,
    Hlt = 1,
    UserMemory = 3,
    SetTssAddr = 4,
    ExtCpuid = 7,
    NrMemslots = 10,
    MpState = 14,
    IrqRouting = 25,
    Irqfd = 32,
    Pit2 = 33,
    Ioeventfd = 36,
    SetIdentityMapAddr = 37,
    Xcrs = 56,
    MaxVcpus = 66,
    TscDeadlineTimer = 72,
    SignalMsi = 77,
    ImmediateExit = 136,
}
