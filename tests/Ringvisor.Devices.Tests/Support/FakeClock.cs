// A fake ITimeSource that is also the device timer factory: Advance moves time forward and fires, in deadline order,
// every timer that became due, so timer-driven devices run deterministically in tests.
using Ringvisor.Core.Cpu;
using Ringvisor.Devices.Platform.Timing;

namespace Ringvisor.Devices.Tests.Support;

internal sealed class FakeClock : ITimeSource, IDeviceTimerFactory
{
    private readonly List<FakeTimer> _timers = [];

    public long NowNanoseconds { get; private set; }

    public long TscFrequency { get; init; } = 1_000_000_000;

    public IDeviceTimer Create(Action callback)
    {
        var t = new FakeTimer(callback);
        _timers.Add(t);
        return t;
    }

    /// <summary>Number of armed timers (to check that idle devices do not keep timers running).</summary>
    public int ArmedTimers => _timers.Count(t => t.Deadline is not null);

    public void Advance(long nanoseconds) => AdvanceTo(NowNanoseconds + nanoseconds);

    public void AdvanceTo(long target)
    {
        while (true)
        {
            FakeTimer? next = null;
            foreach (var t in _timers)
            {
                if (t.Deadline is { } d && d <= target && (next is null || d < next.Deadline))
                {
                    next = t;
                }
            }

            if (next is null)
            {
                break;
            }

            NowNanoseconds = Math.Max(NowNanoseconds, next.Deadline!.Value);
            next.Deadline = null;
            next.Callback();
        }

        NowNanoseconds = target;
    }

    private sealed class FakeTimer(Action callback) : IDeviceTimer
    {
        public long? Deadline { get; set; }

        public Action Callback { get; } = callback;

        public void Arm(long deadlineNanoseconds) => Deadline = deadlineNanoseconds;

        public void Disarm() => Deadline = null;

        public void Dispose() => Deadline = null;
    }
}
