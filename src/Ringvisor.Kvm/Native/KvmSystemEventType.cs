// KVM_SYSTEM_EVENT_* values of kvm_run.system_event.type (include/uapi/linux/kvm.h).
namespace Ringvisor.Kvm.Native;

public enum KvmSystemEventType : uint
{
    Shutdown = 1,
    Reset = 2,
    Crash = 3,
    Wakeup = 4,
    Suspend = 5,
    SevTerm = 6,
}
