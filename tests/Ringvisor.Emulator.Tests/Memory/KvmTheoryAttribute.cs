// A [Theory] that is skipped, with the reason shown, where /dev/kvm cannot be used (the [KvmFact] of TestSupport for
// data-driven tests).
using Ringvisor.TestSupport;

namespace Ringvisor.Emulator.Tests.Memory;

[AttributeUsage(AttributeTargets.Method)]
public sealed class KvmTheoryAttribute : TheoryAttribute
{
    public KvmTheoryAttribute()
    {
        if (HostKvm.UnavailableReason is { } why)
        {
            Skip = why;
        }
    }
}
