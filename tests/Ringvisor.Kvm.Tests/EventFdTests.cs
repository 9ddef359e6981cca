// eventfd(2) and the poll(2) wait the virtio notifier thread uses (no /dev/kvm needed).
namespace Ringvisor.Kvm.Tests;

public sealed class EventFdTests
{
    [Fact]
    public void WaitAny_OneSignalled_ReportsOnlyThatOne()
    {
        using var a = new EventFd();
        using var b = new EventFd();
        b.Signal(3);
        var ready = new bool[2];

        Assert.Equal(1, EventFd.WaitAny([a, b], ready, 1000));
        Assert.Equal([false, true], ready);
        Assert.True(b.TryRead(out ulong v));
        Assert.Equal(3UL, v);
        Assert.False(b.TryRead(out _));
    }

    [Fact]
    public void WaitAny_NoneSignalled_TimesOutWithZero()
    {
        using var a = new EventFd();
        var ready = new bool[1] { true };

        Assert.Equal(0, EventFd.WaitAny([a], ready, 0));
        Assert.False(ready[0]);
    }

    [Fact]
    public void WaitAny_ResultSpanTooShort_Throws()
    {
        using var a = new EventFd();
        Assert.Throws<ArgumentException>(() => EventFd.WaitAny([a], [], 0));
    }
}
