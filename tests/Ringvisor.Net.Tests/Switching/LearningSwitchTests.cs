using System.Collections.Concurrent;
using Ringvisor.Net.Ethernet;
using Ringvisor.Net.Switching;

namespace Ringvisor.Net.Tests.Switching;

public sealed class LearningSwitchTests
{
    private static readonly MacAddress s_a = MacAddress.Parse("52:56:00:00:00:0a");
    private static readonly MacAddress s_b = MacAddress.Parse("52:56:00:00:00:0b");
    private static readonly MacAddress s_c = MacAddress.Parse("52:56:00:00:00:0c");

    private readonly ManualTimeProvider _time = new();
    private readonly LearningSwitch _sw;
    private readonly SwitchPort _p1, _p2, _p3;
    private readonly ConcurrentDictionary<int, List<byte[]>> _out = new();

    public LearningSwitchTests()
    {
        _sw = new LearningSwitch("test", _time, TimeSpan.FromSeconds(60));
        _p1 = Add("p1");
        _p2 = Add("p2");
        _p3 = Add("p3");
    }

    [Fact]
    public void Receive_UnknownUnicast_FloodedToAllOtherPorts()
    {
        _sw.Receive(_p1, FrameBuilder.Build(s_b, s_a));
        Assert.Empty(Out(_p1));
        Assert.Single(Out(_p2));
        Assert.Single(Out(_p3));
    }

    [Fact]
    public void Receive_LearnedDestination_ForwardedToItsPortOnly()
    {
        _sw.Receive(_p2, FrameBuilder.Build(MacAddress.Broadcast, s_b)); // learn B on p2
        Clear();
        _sw.Receive(_p1, FrameBuilder.Build(s_b, s_a));
        Assert.Single(Out(_p2));
        Assert.Empty(Out(_p3));
        Assert.Empty(Out(_p1));
        Assert.Equal(_p1, _sw.MacTableSnapshot[s_a]);
    }

    [Fact]
    public void Receive_Broadcast_FloodedButNeverReflected()
    {
        _sw.Receive(_p3, FrameBuilder.Build(MacAddress.Broadcast, s_c));
        Assert.Empty(Out(_p3));
        Assert.Single(Out(_p1));
        Assert.Single(Out(_p2));
    }

    [Fact]
    public void Receive_DestinationBehindIngressPort_FilteredAndCounted()
    {
        _sw.Receive(_p1, FrameBuilder.Build(MacAddress.Broadcast, s_b)); // B on p1
        Clear();
        _sw.Receive(_p1, FrameBuilder.Build(s_b, s_a));
        Assert.Empty(Out(_p1));
        Assert.Empty(Out(_p2));
        Assert.Equal(1, _p1.Counters.RxDropped);
    }

    [Fact]
    public void MacEntry_AfterAgingTime_ExpiresAndFramesFloodAgain()
    {
        _sw.Receive(_p2, FrameBuilder.Build(MacAddress.Broadcast, s_b));
        _time.Advance(TimeSpan.FromSeconds(61));
        Clear();
        _sw.Receive(_p1, FrameBuilder.Build(s_b, s_a));
        Assert.Single(Out(_p2));
        Assert.Single(Out(_p3));
    }

    [Fact]
    public void MacEntry_RefreshedByTraffic_DoesNotExpire()
    {
        _sw.Receive(_p2, FrameBuilder.Build(MacAddress.Broadcast, s_b));
        _time.Advance(TimeSpan.FromSeconds(50));
        _sw.Receive(_p2, FrameBuilder.Build(MacAddress.Broadcast, s_b));
        _time.Advance(TimeSpan.FromSeconds(50));
        Clear();
        _sw.Receive(_p1, FrameBuilder.Build(s_b, s_a));
        Assert.Single(Out(_p2));
        Assert.Empty(Out(_p3));
    }

    [Fact]
    public void ExpireMacs_RemovesAgedEntries()
    {
        _sw.Receive(_p2, FrameBuilder.Build(MacAddress.Broadcast, s_b));
        _time.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(1, _sw.ExpireMacs());
        Assert.Empty(_sw.MacTableSnapshot);
    }

    [Fact]
    public void LinkDown_PortNeitherSendsNorReceivesAndCountsDrops()
    {
        _sw.SetLinkUp(_p2, false);
        _sw.Receive(_p1, FrameBuilder.Build(MacAddress.Broadcast, s_a));
        Assert.Empty(Out(_p2));
        Assert.Single(Out(_p3));
        _sw.Receive(_p2, FrameBuilder.Build(MacAddress.Broadcast, s_b));
        Assert.Equal(1, _p2.Counters.RxDropped);
        Assert.Single(Out(_p3));
        _sw.SetLinkUp(_p2, true);
        _sw.Receive(_p1, FrameBuilder.Build(MacAddress.Broadcast, s_a));
        Assert.Single(Out(_p2));
    }

    [Fact]
    public void Receive_MalformedFrame_DroppedAndCounted()
    {
        _sw.Receive(_p1, new byte[10]);
        Assert.Equal(1, _p1.Counters.Malformed);
        Assert.Equal(1, _p1.Counters.RxDropped);
        Assert.Empty(Out(_p2));
    }

    [Fact]
    public void Counters_TrackFramesAndBytesPerPort()
    {
        var f = FrameBuilder.Build(MacAddress.Broadcast, s_a, payload: 86); // 100 bytes
        _sw.Receive(_p1, f);
        _sw.Receive(_p1, f);
        Assert.Equal(new PortCounters(2, 200, 0, 0, 0, 0, 0), _p1.Counters);
        Assert.Equal(new PortCounters(0, 0, 2, 200, 0, 0, 0), _p2.Counters);
    }

    [Fact]
    public void RemovePort_ForgetsItsAddressesAndStopsDelivery()
    {
        _sw.Receive(_p2, FrameBuilder.Build(MacAddress.Broadcast, s_b));
        _sw.RemovePort(_p2);
        Assert.DoesNotContain(s_b, _sw.MacTableSnapshot.Keys);
        Clear();
        _sw.Receive(_p1, FrameBuilder.Build(s_b, s_a));
        Assert.Empty(Out(_p2));
        Assert.Single(Out(_p3));
        Assert.Equal(2, _sw.Ports.Count);
    }

    [Fact]
    public void Transmit_PortRefusesFrame_CountedAsTxDrop()
    {
        var full = _sw.AddPort("full", _ => false);
        _sw.Receive(_p1, FrameBuilder.Build(MacAddress.Broadcast, s_a));
        Assert.Equal(1, full.Counters.TxDropped);
        Assert.Equal(0, full.Counters.TxFrames);
    }

    private SwitchPort Add(string name)
    {
        SwitchPort? port = null;
        port = _sw.AddPort(name, f =>
        {
            _out.GetOrAdd(port!.Id, _ => []).Add(f.ToArray());
            return true;
        });
        return port;
    }

    private List<byte[]> Out(SwitchPort p) => _out.GetOrAdd(p.Id, _ => []);

    private void Clear() => _out.Clear();
}
