// Device timers backed by System.Threading.Timer. Deadlines are on the ITimeSource clock; the delay is rounded up
// to whole milliseconds (the granularity of System.Threading.Timer), so callbacks may come late but never early
// in a way that matters: every device re-reads the clock in its callback and re-arms if it was early.
using Ringvisor.Core.Cpu;

namespace Ringvisor.Devices.Platform.Timing;

public sealed class HostDeviceTimerFactory(ITimeSource time) : IDeviceTimerFactory
{
    public IDeviceTimer Create(Action callback) => new HostDeviceTimer(time, callback);
}
