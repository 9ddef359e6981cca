// A learning switch served over a UNIX stream socket: every connection is one port speaking SwitchFraming.
// A client that disconnects (or whose process dies, closing the socket) frees its port; a length prefix above the
// largest frame cannot be resynchronised, so it is counted as malformed and the client is disconnected.
using System.Collections.Concurrent;
using System.Net.Sockets;
using Ringvisor.Net.Sockets;

namespace Ringvisor.Net.Switching;

public sealed class VirtualSwitch : IDisposable
{
    /// <summary>Frames queued toward one client; beyond this the client is too slow and frames are dropped.</summary>
    private const int ClientQueueDepth = 512;

    private readonly ConcurrentDictionary<SwitchClient, byte> _clients = new();
    private Socket? _listener;
    private Thread? _acceptThread;
    private volatile bool _disposed;
    private long _oversizedFrames;

    public VirtualSwitch(string name, TimeProvider? time = null, TimeSpan? agingTime = null)
    {
        Switch = new LearningSwitch(name, time, agingTime);
    }

    public LearningSwitch Switch { get; }

    public string? SocketPath { get; private set; }

    public int ClientCount => _clients.Count;

    /// <summary>Length prefixes larger than the largest frame (the client was disconnected).</summary>
    public long OversizedFrames => Interlocked.Read(ref _oversizedFrames);

    /// <summary>Binds <paramref name="path"/> and starts accepting ports. A stale socket file left by a dead switch is replaced.</summary>
    /// <exception cref="InvalidOperationException">Another switch is listening there, or the socket cannot be bound.</exception>
    public void Listen(string path)
    {
        if (_listener is not null)
        {
            throw new InvalidOperationException($"switch '{Switch.Name}' is already listening at {SocketPath}");
        }

        var s = UnixListener.Listen(path, 16, (reason, inner) => new InvalidOperationException($"switch '{Switch.Name}' cannot listen at {path}: {reason}", inner));
        _listener = s;
        SocketPath = path;
        _acceptThread = new Thread(AcceptLoop) { IsBackground = true, Name = $"switch {Switch.Name} accept" };
        _acceptThread.Start();
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _listener?.Dispose();
        foreach (var c in _clients.Keys)
        {
            c.Close();
        }

        _acceptThread?.Join(TimeSpan.FromSeconds(2));
        if (SocketPath is not null)
        {
            try
            {
                File.Delete(SocketPath);
            }
            catch (IOException)
            {
                // Someone else's file now; leave it.
            }
        }
    }

    private void AcceptLoop()
    {
        while (!_disposed)
        {
            Socket conn;
            try
            {
                conn = _listener!.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            var client = new SwitchClient(this, conn);
            _clients[client] = 0;
            client.Start();
        }
    }

    private void OnClientGone(SwitchClient client)
    {
        if (_clients.TryRemove(client, out _))
        {
            Switch.RemovePort(client.Port);
        }
    }

    /// <summary>One connected port: a reader thread feeding the switch and a writer thread draining its queue.</summary>
    private sealed class SwitchClient
    {
        private readonly VirtualSwitch _owner;
        private readonly Socket _socket;
        private readonly NetworkStream _stream;
        private readonly BlockingCollection<byte[]> _outgoing = new(ClientQueueDepth);
        private int _closed;

        public SwitchClient(VirtualSwitch owner, Socket socket)
        {
            _owner = owner;
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: true);
            Port = owner.Switch.AddPort($"unix client {socket.Handle}", Enqueue);
        }

        public SwitchPort Port { get; }

        public void Start()
        {
            new Thread(ReadLoop) { IsBackground = true, Name = $"switch {_owner.Switch.Name} port {Port.Id} rx" }.Start();
            new Thread(WriteLoop) { IsBackground = true, Name = $"switch {_owner.Switch.Name} port {Port.Id} tx" }.Start();
        }

        public void Close()
        {
            if (Interlocked.Exchange(ref _closed, 1) != 0)
            {
                return;
            }

            _outgoing.CompleteAdding();
            try
            {
                _socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Already gone.
            }

            _stream.Dispose();
            _owner.OnClientGone(this);
        }

        private bool Enqueue(ReadOnlySpan<byte> frame)
        {
            if (Volatile.Read(ref _closed) != 0)
            {
                return false;
            }

            try
            {
                return _outgoing.TryAdd(frame.ToArray());
            }
            catch (InvalidOperationException)
            {
                return false; // completed for adding: the client is closing
            }
        }

        private void ReadLoop()
        {
            var buffer = new byte[Ethernet.EthernetFrame.MaxFrameSize];
            try
            {
                while (SwitchFraming.TryReadLength(_stream, Ethernet.EthernetFrame.MaxFrameSize, out int length, out bool tooLong))
                {
                    if (tooLong)
                    {
                        Port.CountMalformed();
                        Interlocked.Increment(ref _owner._oversizedFrames);
                        break;
                    }

                    if (!SwitchFraming.ReadExactly(_stream, buffer.AsSpan(0, length)))
                    {
                        break;
                    }

                    _owner.Switch.Receive(Port, buffer.AsSpan(0, length));
                }
            }
            catch (Exception e) when (SwitchFraming.IsClosedConnection(e))
            {
                // The peer died or the switch is shutting down.
            }

            Close();
        }

        private void WriteLoop()
        {
            try
            {
                foreach (var frame in _outgoing.GetConsumingEnumerable())
                {
                    SwitchFraming.Write(_stream, frame);
                }
            }
            catch (Exception e) when (SwitchFraming.IsClosedConnection(e))
            {
                // Reader side notices and frees the port.
            }

            Close();
        }
    }
}
