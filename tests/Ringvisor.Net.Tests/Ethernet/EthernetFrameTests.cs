using Ringvisor.Net.Ethernet;

namespace Ringvisor.Net.Tests.Ethernet;

public sealed class EthernetFrameTests
{
    [Fact]
    public void TryParse_UntaggedFrame_ReadsAddressesAndEtherType()
    {
        var f = FrameBuilder.Build(MacAddress.Parse("52:56:00:00:00:02"), MacAddress.Parse("52:56:00:00:00:01"), 0x0800, 46);
        Assert.True(EthernetFrame.TryParse(f, out var eth));
        Assert.Equal("52:56:00:00:00:02", eth.Destination.ToString());
        Assert.Equal("52:56:00:00:00:01", eth.Source.ToString());
        Assert.Equal(0x0800, eth.EtherType);
        Assert.Null(eth.VlanId);
        Assert.Equal(46, eth.Payload.Length);
    }

    [Fact]
    public void TryParse_VlanTaggedFrame_ToleratesTagAndReadsInnerType()
    {
        var f = FrameBuilder.Build(MacAddress.Broadcast, MacAddress.Parse("52:56:00:00:00:01"), 0x8100, 50);
        f[14] = 0x20;
        f[15] = 0x05; // PCP 1, VID 5
        f[16] = 0x08;
        f[17] = 0x06; // ARP
        Assert.True(EthernetFrame.TryParse(f, out var eth));
        Assert.Equal(5, eth.VlanId);
        Assert.Equal(0x0806, eth.EtherType);
        Assert.Equal(18, eth.HeaderLength);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(13)]
    public void TryParse_ShorterThanHeader_Fails(int length)
    {
        Assert.False(EthernetFrame.TryParse(new byte[length], out _));
    }

    [Fact]
    public void TryParse_TruncatedVlanTag_Fails()
    {
        var f = new byte[16];
        f[12] = 0x81;
        Assert.False(EthernetFrame.TryParse(f, out _));
    }

    [Fact]
    public void TryParse_LargerThanMaximum_Fails()
    {
        Assert.False(EthernetFrame.TryParse(new byte[EthernetFrame.MaxFrameSize + 1], out _));
    }
}
