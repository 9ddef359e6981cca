// The socket side of --virtio-console unix=PATH, driven through the device's output stream (no guest).
using System.Net.Sockets;
using System.Text;
using Ringvisor.Core.Memory;
using Ringvisor.Devices.Virtio;
using Ringvisor.Devices.Virtio.Console;
using Ringvisor.Machine.ConsolePorts;

namespace Ringvisor.Machine.Tests.ConsolePorts;

public sealed class UnixSocketConsolePortTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"rv-port-{Guid.NewGuid():N}");
    private readonly GuestMemory _memory = GuestMemory.Create(16UL << 20);

    public UnixSocketConsolePortTests()
    {
        Directory.CreateDirectory(_dir);
    }

    public void Dispose()
    {
        _memory.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private string SocketPath => Path.Combine(_dir, "c.sock");

    private (UnixSocketConsolePort Port, VirtioPciTransport Transport) Open()
    {
        var port = UnixSocketConsolePort.Listen(SocketPath);
        var transport = VirtioPci.Console(_memory, null, port.Output);
        port.Attach((VirtioConsoleDevice)transport.Device);
        return (port, transport);
    }

    private static Socket Connect(string path)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 10_000 };
        s.Connect(new UnixDomainSocketEndPoint(path));
        return s;
    }

    private static string ReceiveText(Socket s, int length)
    {
        var buf = new byte[length];
        int got = 0;
        while (got < length)
        {
            int n = s.Receive(buf, got, length - got, SocketFlags.None);
            if (n == 0)
            {
                break;
            }

            got += n;
        }

        return Encoding.ASCII.GetString(buf, 0, got);
    }

    [Fact]
    public void Output_NoClient_DroppedAndCounted()
    {
        var (port, transport) = Open();
        using (transport)
        using (port)
        {
            port.Output.Write("lost"u8);
            Assert.Equal(4, port.DroppedBytes);
        }
    }

    [Fact]
    public void Output_ClientConnected_ReachesClientAndSecondClientIsRefused()
    {
        var (port, transport) = Open();
        using (transport)
        using (port)
        {
            using var client = Connect(port.Path);
            Assert.True(SpinWait.SpinUntil(() => port.ClientConnected, TimeSpan.FromSeconds(10)));
            port.Output.Write("hello\n"u8);
            Assert.Equal("hello\n", ReceiveText(client, 6));

            using var second = Connect(port.Path);
            Assert.Equal(0, second.Receive(new byte[8])); // closed at once
            Assert.Equal(1, port.ClientsRejected);
        }
    }

    [Fact]
    public void Client_Disconnects_PortServesTheNextOne()
    {
        var (port, transport) = Open();
        using (transport)
        using (port)
        {
            using (var first = Connect(port.Path))
            {
                Assert.True(SpinWait.SpinUntil(() => port.ClientConnected, TimeSpan.FromSeconds(10)));
            }

            Assert.True(SpinWait.SpinUntil(() => !port.ClientConnected, TimeSpan.FromSeconds(10)));
            using var next = Connect(port.Path);
            Assert.True(SpinWait.SpinUntil(() => port.ClientConnected, TimeSpan.FromSeconds(10)));
            port.Output.Write("again"u8);
            Assert.Equal("again", ReceiveText(next, 5));
            Assert.Equal(2, port.ClientsServed);
        }
    }

    [Fact]
    public void Listen_StaleSocketReplaced_LiveSocketAndDataFileRefused()
    {
        // A socket file nobody serves (left by a killed VMM) is replaced.
        using (var stale = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            stale.Bind(new UnixDomainSocketEndPoint(SocketPath));
        }

        var (port, transport) = Open();
        using (transport)
        using (port)
        {
            var e = Assert.Throws<IOException>(() => UnixSocketConsolePort.Listen(SocketPath));
            Assert.Contains("another process", e.Message);
        }

        string data = Path.Combine(_dir, "data.txt");
        File.WriteAllText(data, "keep me");
        var e2 = Assert.Throws<IOException>(() => UnixSocketConsolePort.Listen(data));
        Assert.Contains(data, e2.Message);
        Assert.Equal("keep me", File.ReadAllText(data));
    }
}
