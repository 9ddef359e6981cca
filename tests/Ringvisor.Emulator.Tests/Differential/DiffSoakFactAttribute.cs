// A [Fact] that runs only when RINGVISOR_DIFF_SOAK=<seconds> is set (and /dev/kvm is usable): the long random soak
// of the differential tests, off in CI.
using Ringvisor.TestSupport;

namespace Ringvisor.Emulator.Tests.Differential;

[AttributeUsage(AttributeTargets.Method)]
public sealed class DiffSoakFactAttribute : FactAttribute
{
    public const string Variable = "RINGVISOR_DIFF_SOAK";

    public DiffSoakFactAttribute()
    {
        if (HostKvm.UnavailableReason is { } why)
        {
            Skip = why;
        }
        else if (Seconds <= 0)
        {
            Skip = $"soak mode is off: set {Variable}=<seconds> (and optionally RINGVISOR_DIFF_SEED=<n> to replay a run)";
        }
    }

    public static int Seconds => int.TryParse(Environment.GetEnvironmentVariable(Variable), out int s) ? s : 0;
}
