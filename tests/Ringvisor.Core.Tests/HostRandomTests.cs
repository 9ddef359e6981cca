// HostRandom fills the whole buffer, however large, with bytes that differ between calls.
using Ringvisor.Core.Native;

namespace Ringvisor.Core.Tests;

public sealed class HostRandomTests
{
    [Fact]
    public void LargeBuffer_EveryChunkFilled()
    {
        var data = new byte[1 << 20];
        HostRandom.Fill(data);
        for (int off = 0; off < data.Length; off += 256)
        {
            Assert.False(data.AsSpan(off, 256).IndexOfAnyExcept((byte)0) < 0, $"256 zero bytes at {off}");
        }
    }

    [Fact]
    public void TwoFills_Differ()
    {
        var a = new byte[64];
        var b = new byte[64];
        HostRandom.Fill(a);
        HostRandom.Fill(b);
        Assert.NotEqual(a, b);
    }
}
