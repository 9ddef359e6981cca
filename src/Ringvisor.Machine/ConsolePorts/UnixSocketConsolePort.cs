// The host end of a virtio-console port served on a UNIX stream socket (--virtio-console unix=PATH): Ringvisor
// listens at PATH and one client at a time gets the port's byte stream in both directions. Further clients are
// accepted and closed at once while one is connected. A client that disconnects leaves the port usable for the
// next. Guest output never waits for the host: with no client it is dropped (and counted); with a client it goes
// through a bounded queue to a writer thread, and what does not fit is dropped (and counted) too.
using System.Net.Sockets;
using Ringvisor.Devices.Virtio.Console;
using Ringvisor.Net.Sockets;

namespace Ringvisor.Machine.ConsolePorts;

public sealed class UnixSocketConsolePort : IDisposable
{
    /// <summary>Guest output waiting for a slow client; beyond this it is dropped.</summary>
    public const int MaxQueuedOutput = 256 * 1024;

    private readonly object _gate = new();
    private readonly Socket _listener;
    private readonly Queue<byte[]> _queue = new();
    private readonly Thread _acceptThread;
    private readonly Thread _writerThread;
    private VirtioConsoleDevice? _device;
    private Socket? _client;
    private int _queuedBytes;
    private bool _started;
    private bool _disposed;
    private long _droppedBytes;
    private long _clientsServed;
    private long _clientsRejected;

    private UnixSocketConsolePort(string path, Socket listener)
    {
        Path = path;
        _listener = listener;
        Output = new OutputStream(this);
        _acceptThread = new Thread(AcceptLoop) { IsBackground = true, Name = $"virtio-console {path} accept" };
        _writerThread = new Thread(WriteLoop) { IsBackground = true, Name = $"virtio-console {path} output" };
    }

    public string Path { get; }

    /// <summary>What the device writes guest output to (never blocks).</summary>
    public Stream Output { get; }

    /// <summary>Guest output dropped because no client was connected or the client did not keep up.</summary>
    public long DroppedBytes => Interlocked.Read(ref _droppedBytes);

    /// <summary>Clients that got the port so far.</summary>
    public long ClientsServed => Interlocked.Read(ref _clientsServed);

    /// <summary>Clients closed at once because another one held the port.</summary>
    public long ClientsRejected => Interlocked.Read(ref _clientsRejected);

    public bool ClientConnected
    {
        get
        {
            lock (_gate)
            {
                return _client is not null;
            }
        }
    }

    /// <summary>
    /// Binds and listens at <paramref name="path"/>. A stale socket left by a dead process is replaced; a socket
    /// some process still serves, a directory or a non-empty file at the path is an error.
    /// </summary>
    /// <exception cref="IOException">The path cannot be used; the message names it and says why.</exception>
    public static UnixSocketConsolePort Listen(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = System.IO.Path.GetFullPath(path);
        var listener = UnixListener.Listen(full, 4, (reason, inner) => new IOException($"virtio-console socket {full}: {reason}", inner));
        return new UnixSocketConsolePort(full, listener);
    }

    /// <summary>Connects the port to the device whose input it feeds and starts serving clients.</summary>
    public void Attach(VirtioConsoleDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        lock (_gate)
        {
            if (_started)
            {
                throw new InvalidOperationException($"virtio-console socket {Path} is already attached");
            }

            _started = true;
            _device = device;
        }

        _acceptThread.Start();
        _writerThread.Start();
    }

    public void Dispose()
    {
        Socket? client;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            client = _client;
            _client = null;
            _queue.Clear();
            Monitor.PulseAll(_gate);
        }

        // Closing the listener ends Accept; shutting the client down ends its reader.
        _listener.Dispose();
        Close(client);
        if (_started)
        {
            _acceptThread.Join();
            _writerThread.Join();
        }

        try
        {
            File.Delete(Path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void Close(Socket? socket)
    {
        if (socket is null)
        {
            return;
        }

        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        socket.Dispose();
    }

    private void Enqueue(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        lock (_gate)
        {
            if (_client is null || _disposed || _queuedBytes + data.Length > MaxQueuedOutput)
            {
                Interlocked.Add(ref _droppedBytes, data.Length);
                return;
            }

            _queue.Enqueue(data.ToArray());
            _queuedBytes += data.Length;
            Monitor.Pulse(_gate);
        }
    }

    private void AcceptLoop()
    {
        while (true)
        {
            Socket s;
            try
            {
                s = _listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return; // the listener was closed
            }

            lock (_gate)
            {
                if (_client is not null || _disposed)
                {
                    Interlocked.Increment(ref _clientsRejected);
                    s.Dispose();
                    continue;
                }

                _client = s;
                Interlocked.Increment(ref _clientsServed);
            }

            new Thread(() => ReadLoop(s)) { IsBackground = true, Name = $"virtio-console {Path} input" }.Start();
        }
    }

    private void ReadLoop(Socket client)
    {
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = client.Receive(buffer)) > 0)
            {
                _device!.SendToGuest(buffer.AsSpan(0, n));
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        lock (_gate)
        {
            if (ReferenceEquals(_client, client))
            {
                // Output queued for this client goes nowhere now.
                _client = null;
                Interlocked.Add(ref _droppedBytes, _queuedBytes);
                _queue.Clear();
                _queuedBytes = 0;
            }
        }

        Close(client);
    }

    private void WriteLoop()
    {
        while (true)
        {
            byte[] chunk;
            Socket? client;
            lock (_gate)
            {
                while (_queue.Count == 0 && !_disposed)
                {
                    Monitor.Wait(_gate);
                }

                if (_disposed)
                {
                    return;
                }

                chunk = _queue.Dequeue();
                _queuedBytes -= chunk.Length;
                client = _client;
            }

            if (client is null)
            {
                Interlocked.Add(ref _droppedBytes, chunk.Length);
                continue;
            }

            try
            {
                client.Send(chunk);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // The client went away mid-write; its reader notices and frees the port.
                Interlocked.Add(ref _droppedBytes, chunk.Length);
                try
                {
                    client.Shutdown(SocketShutdown.Both);
                }
                catch (Exception e2) when (e2 is SocketException or ObjectDisposedException)
                {
                }
            }
        }
    }

    /// <summary>The device's host output: a write-only stream that hands bytes to the port without waiting.</summary>
    private sealed class OutputStream(UnixSocketConsolePort port) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override void Flush()
        {
        }

        public override void Write(byte[] buffer, int offset, int count) => port.Enqueue(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer) => port.Enqueue(buffer);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
