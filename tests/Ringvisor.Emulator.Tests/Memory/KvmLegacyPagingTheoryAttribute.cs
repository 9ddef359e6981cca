// A [Theory] that needs KVM to run guests with 32-bit or PAE paging; skipped, with the reason, where it cannot.
namespace Ringvisor.Emulator.Tests.Memory;

[AttributeUsage(AttributeTargets.Method)]
public sealed class KvmLegacyPagingTheoryAttribute : TheoryAttribute
{
    public KvmLegacyPagingTheoryAttribute()
    {
        if (KvmOracle.LegacyPagingUnavailableReason is { } why)
        {
            Skip = why;
        }
    }
}
