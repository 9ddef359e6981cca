// One System.Threading.Timer per device timer; no thread is busy while it is disarmed.
using Ringvisor.Core.Cpu;

namespace Ringvisor.Devices.Platform.Timing;

internal sealed class HostDeviceTimer : IDeviceTimer
{
    private const long NanosecondsPerMillisecond = 1_000_000;

    // System.Threading.Timer rejects due times above 0xFFFFFFFE ms; nothing a guest programs needs longer, and a
    // device re-arms on expiry anyway.
    private const long MaxDelayMilliseconds = 0xFFFF_FFFE;

    private readonly ITimeSource _time;
    private readonly Timer _timer;
    private volatile bool _disposed;

    public HostDeviceTimer(ITimeSource time, Action callback)
    {
        _time = time;
        _timer = new Timer(_ => callback(), null, Timeout.Infinite, Timeout.Infinite);
    }

    public void Arm(long deadlineNanoseconds)
    {
        // A device being torn down may still re-arm from a callback already in flight.
        if (_disposed)
        {
            return;
        }

        long delay = deadlineNanoseconds - _time.NowNanoseconds;
        long ms = delay <= 0 ? 0 : Math.Min((delay + NanosecondsPerMillisecond - 1) / NanosecondsPerMillisecond, MaxDelayMilliseconds);
        _timer.Change(ms, Timeout.Infinite);
    }

    public void Disarm()
    {
        if (!_disposed)
        {
            _timer.Change(Timeout.Infinite, Timeout.Infinite);
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _timer.Dispose();
    }
}
