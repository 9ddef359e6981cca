using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using Ringvisor.Net.Backends;
using Ringvisor.Net.Ethernet;
using Ringvisor.Net.Switching;

namespace Ringvisor.Net.Tests.Switching;

public sealed class VirtualSwitchTests : IDisposable
{
    private static readonly MacAddress s_a = MacAddress.Parse("52:56:00:00:00:0a");
    private static readonly MacAddress s_b = MacAddress.Parse("52:56:00:00:00:0b");

    private readonly string _dir = Directory.CreateTempSubdirectory("rv-sw-").FullName;
    private readonly VirtualSwitch _vs = new("t");
    private readonly string _path;

    public VirtualSwitchTests()
    {
        _path = Path.Combine(_dir, "t.sock");
        _vs.Listen(_path);
    }

    public void Dispose()
    {
        _vs.Dispose();
        Directory.Delete(_dir, true);
    }

    [Fact]
    public void TwoClients_ExchangeFramesThroughTheSwitch()
    {
        using var a = SwitchPortBackend.Connect(_path);
        using var b = SwitchPortBackend.Connect(_path);
        var gotA = new BlockingCollection<byte[]>();
        var gotB = new BlockingCollection<byte[]>();
        a.Start(f => gotA.Add(f.ToArray()));
        b.Start(f => gotB.Add(f.ToArray()));
        WaitFor(() => _vs.ClientCount == 2);

        var hello = FrameBuilder.Build(MacAddress.Broadcast, s_a, fill: 0x11);
        Assert.True(a.Send(hello));
        Assert.True(gotB.TryTake(out var atB, 10_000));
        Assert.Equal(hello, atB);

        var reply = FrameBuilder.Build(s_a, s_b, fill: 0x22);
        Assert.True(b.Send(reply));
        Assert.True(gotA.TryTake(out var atA, 10_000));
        Assert.Equal(reply, atA);
        Assert.False(gotA.TryTake(out _, 50)); // the broadcast was not reflected to its sender
    }

    [Fact]
    public void ClientDisconnects_PortIsFreed()
    {
        var a = SwitchPortBackend.Connect(_path);
        a.Start(_ => { });
        WaitFor(() => _vs.Switch.Ports.Count == 1);
        a.Dispose();
        WaitFor(() => _vs.Switch.Ports.Count == 0 && _vs.ClientCount == 0);
    }

    [Fact]
    public void ClientProcessDies_RawSocketClosed_PortIsFreedAndAddressesForgotten()
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(_path));
        Send(s, FrameBuilder.Build(MacAddress.Broadcast, s_a));
        WaitFor(() => _vs.Switch.MacTableSnapshot.ContainsKey(s_a));
        s.Close(); // what the kernel does for a killed process
        WaitFor(() => _vs.Switch.Ports.Count == 0 && !_vs.Switch.MacTableSnapshot.ContainsKey(s_a));
    }

    [Fact]
    public void OversizedLengthPrefix_CountedAndClientDisconnected()
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(_path));
        var prefix = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(prefix, 0x0100_0000);
        s.Send(prefix);
        WaitFor(() => _vs.OversizedFrames == 1 && _vs.ClientCount == 0);
    }

    [Fact]
    public void ShortFrame_DroppedAndCountedConnectionKept()
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(_path));
        Send(s, new byte[5]);
        Send(s, new byte[0]);
        WaitFor(() => _vs.Switch.Ports.Count == 1 && _vs.Switch.Ports[0].Counters.Malformed == 2);
        Send(s, FrameBuilder.Build(MacAddress.Broadcast, s_a));
        WaitFor(() => _vs.Switch.Ports[0].Counters.RxFrames == 1);
    }

    [Fact]
    public void Listen_SecondSwitchOnSamePath_FailsWithClearError()
    {
        using var other = new VirtualSwitch("t2");
        var e = Assert.Throws<InvalidOperationException>(() => other.Listen(_path));
        Assert.Contains(_path, e.Message);
    }

    [Fact]
    public void Listen_StaleSocketFile_IsReplaced()
    {
        string stale = Path.Combine(_dir, "stale.sock");
        using (var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            s.Bind(new UnixDomainSocketEndPoint(stale)); // bound, never listening, then closed: a dead switch's leftover
        }

        using var vs = new VirtualSwitch("stale");
        vs.Listen(stale);
        using var c = SwitchPortBackend.Connect(stale);
        Assert.True(c.LinkUp);
    }

    [Fact]
    public void Listen_FileWithDataAtThePath_FailsAndLeavesItAlone()
    {
        string file = Path.Combine(_dir, "data.sock");
        File.WriteAllText(file, "not a socket");

        using var vs = new VirtualSwitch("data");
        var e = Assert.Throws<InvalidOperationException>(() => vs.Listen(file));

        Assert.Contains(file, e.Message);
        Assert.Equal("not a socket", File.ReadAllText(file));
    }

    [Fact]
    public void IsClosedConnection_ReadOnAStreamClosedByAnotherThread_Recognised()
    {
        // What a port's reader sees when Close() disposed its NetworkStream first: must end the loop, not the process.
        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        client.Connect(new UnixDomainSocketEndPoint(_path));
        var stream = new NetworkStream(client, ownsSocket: false);
        stream.Dispose();

        var e = Record.Exception(() => SwitchFraming.ReadExactly(stream, new byte[4]));

        Assert.NotNull(e);
        Assert.True(SwitchFraming.IsClosedConnection(e), e.GetType().Name);
        Assert.False(SwitchFraming.IsClosedConnection(new ArgumentException("a bug, not a closed peer")));
    }

    [Fact]
    public void Connect_NoSwitchRunning_ErrorSaysHowToStartOne()
    {
        var e = Assert.Throws<IOException>(() => SwitchPortBackend.Connect(Path.Combine(_dir, "none.sock")));
        Assert.Contains("ringvisor switch", e.Message);
    }

    [Fact]
    public void SwitchGoesAway_BackendLinkGoesDown()
    {
        string p = Path.Combine(_dir, "gone.sock");
        var vs = new VirtualSwitch("gone");
        vs.Listen(p);
        using var c = SwitchPortBackend.Connect(p);
        using var down = new ManualResetEventSlim();
        c.Disconnected += down.Set;
        c.Start(_ => { });
        WaitFor(() => vs.ClientCount == 1);
        vs.Dispose();
        Assert.True(down.Wait(10_000));
        Assert.False(c.LinkUp);
        Assert.False(c.Send(FrameBuilder.Build(MacAddress.Broadcast, s_a)));
    }

    private static void Send(Socket s, byte[] frame)
    {
        var buf = new byte[4 + frame.Length];
        BinaryPrimitives.WriteUInt32BigEndian(buf, (uint)frame.Length);
        frame.CopyTo(buf, 4);
        s.Send(buf);
    }

    internal static void WaitFor(Func<bool> condition)
    {
        var deadline = Environment.TickCount64 + 10_000;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, "condition not reached within 10 s");
            Thread.Sleep(2);
        }
    }
}
