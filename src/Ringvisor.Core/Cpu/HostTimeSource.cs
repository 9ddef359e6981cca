using System.Diagnostics;

namespace Ringvisor.Core.Cpu;

/// <summary>Guest time that follows the host's monotonic clock, with a fixed nominal TSC frequency.</summary>
public sealed class HostTimeSource : ITimeSource
{
    /// <summary>Nominal guest TSC frequency advertised to guests (1 GHz makes ticks = nanoseconds).</summary>
    public const long DefaultTscFrequency = 1_000_000_000;

    private readonly long _start = Stopwatch.GetTimestamp();

    public long NowNanoseconds => (long)((Stopwatch.GetTimestamp() - _start) * (1e9 / Stopwatch.Frequency));

    public long TscFrequency => DefaultTscFrequency;
}
