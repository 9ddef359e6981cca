// A virtual NIC's connection to a Ringvisor switch (or anything speaking SwitchFraming over a UNIX socket).
using System.Net.Sockets;
using Ringvisor.Core.Net;
using Ringvisor.Net.Ethernet;
using Ringvisor.Net.Switching;

namespace Ringvisor.Net.Backends;

public sealed class SwitchPortBackend : INetworkBackend
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly object _sendGate = new();
    private Thread? _reader;
    private volatile bool _connected = true;
    private int _disposed;

    private SwitchPortBackend(Socket socket, string description)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        Description = description;
    }

    public string Description { get; }

    public bool LinkUp => _connected;

    /// <summary>Raised once, from the reader thread, when the switch goes away.</summary>
    public event Action? Disconnected;

    /// <summary>Raised when the connection to the switch is lost (the link goes down).</summary>
    public event Action? LinkChanged;

    /// <summary>Joins the named switch (see <see cref="SwitchSocketPath.For"/>).</summary>
    /// <exception cref="IOException">No switch of that name is running.</exception>
    public static SwitchPortBackend ConnectToSwitch(string switchName) =>
        Connect(SwitchSocketPath.For(switchName), $"switch {switchName}");

    /// <exception cref="IOException">Nothing listens at <paramref name="socketPath"/>; the message says how to start a switch.</exception>
    public static SwitchPortBackend Connect(string socketPath, string? description = null)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            s.Connect(new UnixDomainSocketEndPoint(socketPath));
        }
        catch (SocketException e)
        {
            s.Dispose();
            throw new IOException(
                $"cannot connect to the virtual switch at {socketPath}: {e.Message} (is it running? start it with `ringvisor switch NAME`)", e);
        }

        return new SwitchPortBackend(s, description ?? $"switch socket {socketPath}");
    }

    public void Start(NetworkFrameReceiver receiver)
    {
        if (_reader is not null)
        {
            throw new InvalidOperationException($"{Description}: already started");
        }

        _reader = new Thread(() => ReadLoop(receiver)) { IsBackground = true, Name = $"{Description} rx" };
        _reader.Start();
    }

    public bool Send(ReadOnlySpan<byte> frame)
    {
        if (!_connected || frame.Length > EthernetFrame.MaxFrameSize)
        {
            return false;
        }

        try
        {
            lock (_sendGate)
            {
                SwitchFraming.Write(_stream, frame);
            }

            return true;
        }
        catch (Exception e) when (SwitchFraming.IsClosedConnection(e))
        {
            _connected = false;
            return false;
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _connected = false;
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already closed.
        }

        _stream.Dispose();
        if (_reader is not null && Thread.CurrentThread != _reader)
        {
            _reader.Join(TimeSpan.FromSeconds(2));
        }
    }

    private void ReadLoop(NetworkFrameReceiver receiver)
    {
        var buffer = new byte[EthernetFrame.MaxFrameSize];
        try
        {
            while (SwitchFraming.TryReadLength(_stream, EthernetFrame.MaxFrameSize, out int length, out bool tooLong) && !tooLong)
            {
                if (!SwitchFraming.ReadExactly(_stream, buffer.AsSpan(0, length)))
                {
                    break;
                }

                receiver(buffer.AsSpan(0, length));
            }
        }
        catch (Exception e) when (SwitchFraming.IsClosedConnection(e))
        {
            // Switch gone or we are closing.
        }

        _connected = false;
        Disconnected?.Invoke();
        LinkChanged?.Invoke();
    }
}
