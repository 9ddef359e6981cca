// A [Fact] that needs KVM backed by real VT-x/AMD-V (guest CPL-0 code executed by hardware, not emulated by the
// host kernel): skipped with the reason elsewhere. RINGVISOR_KVM_HARDWARE_TESTS=1 runs them wherever /dev/kvm opens
// (a nested host whose /proc/cpuinfo hides vmx/svm, or to see how such a test fails on a host that cannot run it).
using Xunit;

namespace Ringvisor.TestSupport;

[AttributeUsage(AttributeTargets.Method)]
public sealed class KvmHardwareFactAttribute : FactAttribute
{
    /// <summary>Set to 1 to run the test even where /proc/cpuinfo lists neither vmx nor svm.</summary>
    public const string ForceVariable = "RINGVISOR_KVM_HARDWARE_TESTS";

    public KvmHardwareFactAttribute()
    {
        if (HostKvm.UnavailableReason is { } why)
        {
            Skip = why;
        }
        else if (!HostKvm.HasHardwareVirtualization && Environment.GetEnvironmentVariable(ForceVariable) != "1")
        {
            Skip = "the host CPU does not advertise vmx/svm: its /dev/kvm emulates guest CPL-0 code in software";
        }
    }
}
