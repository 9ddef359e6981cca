using Ringvisor.Core.Memory;

namespace Ringvisor.Core.Tests;

public sealed class DirtyBitmapTests
{
    [Fact]
    public void Mark_BeyondPageCount_Ignored()
    {
        var b = new DirtyBitmap(10);
        b.Mark(10);
        b.Mark(ulong.MaxValue);
        Assert.Empty(b.TakeDirtyPages());
    }

    [Fact]
    public void TakeDirtyPages_ConcurrentMarks_NoneLost()
    {
        var b = new DirtyBitmap(4096);
        Parallel.For(0, 4096, i => b.Mark((ulong)i));
        Assert.Equal(4096, b.TakeDirtyPages().Count);
    }
}
