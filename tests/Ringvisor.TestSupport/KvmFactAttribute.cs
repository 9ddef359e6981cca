// A [Fact] that is skipped, with the reason shown, where /dev/kvm cannot be opened read-write.
using Xunit;

namespace Ringvisor.TestSupport;

[AttributeUsage(AttributeTargets.Method)]
public sealed class KvmFactAttribute : FactAttribute
{
    public KvmFactAttribute()
    {
        if (HostKvm.UnavailableReason is { } why)
        {
            Skip = why;
        }
    }
}
