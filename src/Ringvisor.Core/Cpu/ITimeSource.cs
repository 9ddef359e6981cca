namespace Ringvisor.Core.Cpu;

/// <summary>
/// The guest's clock for software-emulated timing (bt engine TSC, LAPIC timer, PIT, kvm-clock). Monotonic.
/// The default follows the host's monotonic clock; tests inject a fake.
/// </summary>
public interface ITimeSource
{
    /// <summary>Nanoseconds since the VM was created.</summary>
    long NowNanoseconds { get; }

    /// <summary>Guest TSC ticks per second.</summary>
    long TscFrequency { get; }
}
