// Creates device timers. Production uses HostDeviceTimerFactory (System.Threading.Timer against the host clock);
// tests inject a manual factory that fires callbacks when a fake ITimeSource is advanced.
namespace Ringvisor.Devices.Platform.Timing;

public interface IDeviceTimerFactory
{
    /// <summary>A disarmed timer that runs <paramref name="callback"/> on expiry (on a thread-pool thread in production).</summary>
    IDeviceTimer Create(Action callback);
}
