// A one-shot timer a device arms for its next event (PIT IRQ 0 edge, LAPIC timer expiry, RTC periodic/update
// interrupt). Devices compute their state from an ITimeSource on every access; the timer only exists so that an
// event nobody polls for still arrives, and it is armed only while such an event is due (no periodic polling).
namespace Ringvisor.Devices.Platform.Timing;

public interface IDeviceTimer : IDisposable
{
    /// <summary>
    /// Fires the callback once at (or after) <paramref name="deadlineNanoseconds"/> on the device's
    /// <see cref="Ringvisor.Core.Cpu.ITimeSource"/> clock. Re-arming replaces the previous deadline.
    /// </summary>
    void Arm(long deadlineNanoseconds);

    /// <summary>Cancels a pending expiry (a callback already running may still complete).</summary>
    void Disarm();
}
