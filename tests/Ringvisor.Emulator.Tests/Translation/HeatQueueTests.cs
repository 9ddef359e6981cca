// The background translator's queue order: hottest pending unit first (executions reported while it waited, decayed at
// each take), the newest among equals.
using Ringvisor.Emulator.Translation;

namespace Ringvisor.Emulator.Tests.Translation;

public sealed class HeatQueueTests
{
    private static UnitKey Key(int entry) => new(0x1234, 0, 64, entry);

    private static List<int> Drain(HeatQueue<int> q)
    {
        var order = new List<int>();
        while (q.TryTake(out var key, out int item))
        {
            Assert.Equal(key.EntryOffset, item);
            order.Add(item);
        }

        return order;
    }

    [Fact]
    public void NothingReported_NewestFirst()
    {
        var q = new HeatQueue<int>(16);
        foreach (int e in new[] { 1, 2, 3 })
        {
            Assert.True(q.TryAdd(Key(e), e));
        }

        Assert.Equal([3, 2, 1], Drain(q));
        Assert.True(q.IsEmpty);
    }

    [Fact]
    public void ExecutionsReportedWhileWaiting_HottestFirst()
    {
        var q = new HeatQueue<int>(16);
        foreach (int e in new[] { 1, 2, 3 })
        {
            q.TryAdd(Key(e), e);
        }

        for (int i = 0; i < 5; i++)
        {
            Assert.True(q.Touch(Key(1)));
        }

        Assert.True(q.Touch(Key(2)));
        Assert.Equal([1, 2, 3], Drain(q));
    }

    [Fact]
    public void HeatDecaysAtEachTake_CodeHotNowBeatsCodeHotEarlier()
    {
        var q = new HeatQueue<int>(16);
        q.TryAdd(Key(1), 1);
        q.TryAdd(Key(2), 2);
        for (int i = 0; i < 8; i++)
        {
            q.Touch(Key(1));
        }

        for (int i = 0; i < 9; i++)
        {
            q.Touch(Key(2));
        }

        Assert.True(q.TryTake(out _, out int first));
        Assert.Equal(2, first);           // 9 > 8; entry 1 decays to 6
        q.TryAdd(Key(3), 3);
        for (int i = 0; i < 7; i++)
        {
            q.Touch(Key(3));
        }

        Assert.Equal([3, 1], Drain(q));   // 7 now beats 8 reported before the take
    }

    [Fact]
    public void PendingUntilDone_DuplicatesAndOverflowRefused()
    {
        var q = new HeatQueue<int>(2);
        Assert.True(q.TryAdd(Key(1), 1));
        Assert.False(q.TryAdd(Key(1), 1));
        Assert.True(q.TryAdd(Key(2), 2));
        Assert.False(q.TryAdd(Key(3), 3));
        Assert.True(q.TryTake(out var key, out _));
        Assert.True(q.Touch(key));        // being compiled: still pending
        q.Done(key);
        Assert.False(q.Touch(key));
        Assert.True(q.TryAdd(Key(3), 3));
    }
}
