using Ringvisor.Core.Cpu;
using Ringvisor.Devices.Platform.Timing;

namespace Ringvisor.Devices.Tests.Platform;

public class HostDeviceTimerFactoryTests
{
    [Fact]
    public void Arm_NearDeadline_CallbackRunsOnce()
    {
        var time = new HostTimeSource();
        using var fired = new SemaphoreSlim(0);
        using var timer = new HostDeviceTimerFactory(time).Create(() => fired.Release());

        timer.Arm(time.NowNanoseconds + 1_000_000);

        Assert.True(fired.Wait(TimeSpan.FromSeconds(10)), "the timer never fired");
        Assert.False(fired.Wait(TimeSpan.FromMilliseconds(50)), "a one-shot timer fired twice");
    }

    [Fact]
    public void Disarm_BeforeDeadline_CallbackDoesNotRun()
    {
        var time = new HostTimeSource();
        using var fired = new SemaphoreSlim(0);
        using var timer = new HostDeviceTimerFactory(time).Create(() => fired.Release());

        timer.Arm(time.NowNanoseconds + 200_000_000);
        timer.Disarm();

        Assert.False(fired.Wait(TimeSpan.FromMilliseconds(400)));
    }

    [Fact]
    public void Arm_AfterDispose_Ignored()
    {
        var time = new HostTimeSource();
        var timer = new HostDeviceTimerFactory(time).Create(() => { });
        timer.Dispose();
        timer.Arm(time.NowNanoseconds);
        timer.Disarm();
    }
}
