// Extra console ports (virtio-console) with Linux's virtio_console driver: /dev/hvc0 served on a UNIX socket (both
// directions, a second client refused while the first holds the port, a reconnect after the first leaves) and
// /dev/hvc1 appended to a file.
using System.Net.Sockets;
using System.Text;
using Ringvisor.Machine.ConsolePorts;

namespace Ringvisor.Machine.Tests.Integration;

public sealed class VirtioConsoleLinuxTests
{
    [Fact]
    public void SocketAndFilePorts_Bt_GuestAndHostExchangeLines()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"rv-hvc-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        string socketPath = Path.Combine(dir, "hvc0.sock");
        string filePath = Path.Combine(dir, "hvc1.log");
        try
        {
            using var s = LinuxSession.Boot(EngineKind.Bt, consoles:
            [
                new ConsoleConfig(ConsoleBackendKind.UnixSocket, socketPath),
                new ConsoleConfig(ConsoleBackendKind.File, filePath),
            ]);
            Assert.Contains("/dev/hvc1", s.Run("ls /dev/hvc0 /dev/hvc1"));

            var reader = new SocketLines();
            using (var client = Connect(socketPath))
            {
                reader.Start(client);
                Assert.True(SpinWait.SpinUntil(() => ClientHeld(s), TimeSpan.FromSeconds(10)));

                // A second client while the first holds the port is closed at once.
                using (var second = Connect(socketPath))
                {
                    var buf = new byte[16];
                    second.ReceiveTimeout = 10_000;
                    Assert.Equal(0, second.Receive(buf));
                }

                // Guest → host, then host → guest on one open file description (so no byte arrives while the tty is closed).
                s.Send("exec 3<>/dev/hvc0; echo guest-says-hello >&3; read -r line <&3; echo got-$line-$((6*7)); exec 3<&-");
                reader.WaitFor("guest-says-hello", TimeSpan.FromMinutes(2));
                client.Send(Encoding.ASCII.GetBytes("host-says-hi\n"));
                s.Console.WaitFor("got-host-says-hi-42", LinuxSession.CommandLimit, () => s.Stopped);
            }

            // The first client left; the port serves the next one.
            Assert.True(SpinWait.SpinUntil(() => !ClientHeld(s), TimeSpan.FromSeconds(10)));
            using (var again = Connect(socketPath))
            {
                var reader2 = new SocketLines();
                reader2.Start(again);
                Assert.True(SpinWait.SpinUntil(() => ClientHeld(s), TimeSpan.FromSeconds(10)));
                s.Run("echo second-client-line > /dev/hvc0");
                reader2.WaitFor("second-client-line", TimeSpan.FromMinutes(2));
            }

            s.Run("echo to-the-file > /dev/hvc1");
            Assert.True(SpinWait.SpinUntil(() => File.Exists(filePath) && File.ReadAllText(filePath).Contains("to-the-file", StringComparison.Ordinal), TimeSpan.FromSeconds(30)),
                $"file port holds: {(File.Exists(filePath) ? File.ReadAllText(filePath) : "(missing)")}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static bool ClientHeld(LinuxSession s) => PortOf(s).ClientConnected;

    private static UnixSocketConsolePort PortOf(LinuxSession s) =>
        s.Machine.SocketConsolePorts.Single();

    private static Socket Connect(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(path));
        return socket;
    }

    /// <summary>Collects what a socket receives on a background thread and lets the test wait for text in it.</summary>
    private sealed class SocketLines
    {
        private readonly StringBuilder _text = new();

        public void Start(Socket socket)
        {
            new Thread(() =>
            {
                var buf = new byte[4096];
                try
                {
                    int n;
                    while ((n = socket.Receive(buf)) > 0)
                    {
                        lock (_text)
                        {
                            _text.Append(Encoding.Latin1.GetString(buf, 0, n));
                        }
                    }
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                }
            }) { IsBackground = true }.Start();
        }

        public void WaitFor(string needle, TimeSpan timeout)
        {
            bool found = SpinWait.SpinUntil(() =>
            {
                lock (_text)
                {
                    return _text.ToString().Contains(needle, StringComparison.Ordinal);
                }
            }, timeout);
            string all;
            lock (_text)
            {
                all = _text.ToString();
            }

            Assert.True(found, $"the socket never showed '{needle}'; it got: {all}");
        }
    }
}
