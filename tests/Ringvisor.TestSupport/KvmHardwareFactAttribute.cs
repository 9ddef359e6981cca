// A [Fact] that needs KVM backed by real VT-x/AMD-V (guest CPL-0 code executed by hardware, not emulated by the
// host kernel): skipped with the reason elsewhere.
using Xunit;

namespace Ringvisor.TestSupport;

[AttributeUsage(AttributeTargets.Method)]
public sealed class KvmHardwareFactAttribute : FactAttribute
{
    public KvmHardwareFactAttribute()
    {
        if (HostKvm.UnavailableReason is { } why)
        {
            Skip = why;
        }
        else if (!HostKvm.HasHardwareVirtualization)
        {
            Skip = "the host CPU does not advertise vmx/svm: its /dev/kvm emulates guest CPL-0 code in software";
        }
    }
}
