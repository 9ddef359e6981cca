using Ringvisor.Net.Ethernet;

namespace Ringvisor.Net.Tests.Ethernet;

public sealed class MacAddressTests
{
    [Fact]
    public void Parse_ThenToString_RoundTrips()
    {
        Assert.Equal("52:56:0a:bc:de:f0", MacAddress.Parse("52-56-0A-BC-DE-F0").ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("52:56:00:00:00")]
    [InlineData("52:56:00:00:00:zz")]
    [InlineData("52:56:00:00:00:100")]
    public void Parse_Invalid_ThrowsFormatException(string text)
    {
        Assert.Throws<FormatException>(() => MacAddress.Parse(text));
    }

    [Fact]
    public void IsMulticast_GroupBit_Detected()
    {
        Assert.True(MacAddress.Parse("01:00:5e:00:00:01").IsMulticast);
        Assert.True(MacAddress.Broadcast.IsMulticast);
        Assert.True(MacAddress.Broadcast.IsBroadcast);
        Assert.False(MacAddress.Parse("52:56:00:00:00:01").IsMulticast);
    }
}
