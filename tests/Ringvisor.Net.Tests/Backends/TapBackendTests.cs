using Ringvisor.Net.Backends;

namespace Ringvisor.Net.Tests.Backends;

public sealed class TapBackendTests
{
    [Theory]
    [InlineData("")]
    [InlineData("name-that-is-too-long")]
    [InlineData("bad/name")]
    public void Open_InvalidInterfaceName_ThrowsClearError(string name)
    {
        var e = Assert.Throws<IOException>(() => TapBackend.Open(name));
        Assert.Contains("interface name", e.Message);
    }

    [Fact]
    public void IfReqSize_MatchesKernelStructOnX64()
    {
        // struct ifreq is IFNAMSIZ (16) + a 24-byte union on LP64 (linux/if.h).
        Assert.Equal(40, Native.NetNative.IfReqSize);
        Assert.Equal(16, Native.NetNative.InterfaceNameSize);
    }
}
