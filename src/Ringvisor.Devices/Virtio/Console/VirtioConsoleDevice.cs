// virtio-console (VIRTIO 1.2 §5.3) with a single port (no VIRTIO_CONSOLE_F_MULTIPORT): receiveq0 carries host
// input to the guest, transmitq0 carries guest output to the host stream. Linux shows it as /dev/hvc0.
using System.Collections.Concurrent;

namespace Ringvisor.Devices.Virtio.Console;

public sealed class VirtioConsoleDevice : VirtioDevice, IDisposable
{
    public const int ReceiveQueue = 0;
    public const int TransmitQueue = 1;
    public const ushort QueueSize = 64;

    /// <summary>struct virtio_console_config: cols, rows, max_nr_ports, emerg_wr (§5.3.4).</summary>
    private const int ConfigBytes = 12;

    /// <summary>Host input buffered while the guest has no receive buffers; older input is kept, newer dropped.</summary>
    private const int MaxPendingInput = 64 * 1024;

    private readonly Stream? _output;
    private readonly Stream? _input;
    private readonly ConcurrentQueue<byte[]> _pending = new();
    private readonly Thread? _reader;
    private byte[]? _partial;
    private int _partialOffset;
    private int _pendingBytes;
    private int _readerStarted;
    private long _bytesOut, _bytesIn, _inputDropped;

    /// <param name="name">Device name.</param>
    /// <param name="hostInput">Read on a background thread and fed to the guest; null for none.</param>
    /// <param name="hostOutput">Receives what the guest writes; null discards it.</param>
    public VirtioConsoleDevice(string name, Stream? hostInput, Stream? hostOutput)
        : base(name, VirtioDeviceType.Console, 2, QueueSize)
    {
        _input = hostInput;
        _output = hostOutput;
        if (hostInput is not null)
        {
            _reader = new Thread(ReadInput) { IsBackground = true, Name = $"virtio-console {name} input" };
        }
    }

    public long BytesToHost => Interlocked.Read(ref _bytesOut);

    public long BytesToGuest => Interlocked.Read(ref _bytesIn);

    public long InputDropped => Interlocked.Read(ref _inputDropped);

    public override ulong DeviceFeatures => 0;

    public override int ConfigSize => ConfigBytes;

    /// <summary>Class 07h communication, subclass 80h other.</summary>
    public override uint PciClassCode => 0x07_80_00;

    public override void ReadConfig(int offset, Span<byte> data) => data.Clear();

    /// <summary>Queues host bytes for the guest (the input thread uses this too).</summary>
    public void SendToGuest(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            return;
        }

        if (Interlocked.Add(ref _pendingBytes, bytes.Length) > MaxPendingInput)
        {
            Interlocked.Add(ref _pendingBytes, -bytes.Length);
            Interlocked.Add(ref _inputDropped, bytes.Length);
            return;
        }

        _pending.Enqueue(bytes.ToArray());
        Transport.RequestProcessing(ReceiveQueue);
    }

    public void Dispose()
    {
        _input?.Dispose();
    }

    protected internal override void Activate()
    {
        if (_reader is not null && Interlocked.Exchange(ref _readerStarted, 1) == 0)
        {
            _reader.Start();
        }
    }

    protected internal override void ProcessQueue(Virtqueue queue)
    {
        if (queue.Index == TransmitQueue)
        {
            ProcessTransmit(queue);
        }
        else
        {
            ProcessReceive(queue);
        }
    }

    private void ProcessTransmit(Virtqueue queue)
    {
        do
        {
            while (queue.TryPop(out var chain))
            {
                var buffer = new byte[(int)Math.Min(chain.ReadableLength, 1 << 20)];
                if (chain.TryRead(Memory, 0, buffer))
                {
                    try
                    {
                        _output?.Write(buffer);
                        _output?.Flush();
                        Interlocked.Add(ref _bytesOut, buffer.Length);
                    }
                    catch (IOException e)
                    {
                        Statistics.CountRequestError($"{Name}: host output failed: {e.Message}");
                    }
                }
                else
                {
                    Statistics.CountRequestError($"{Name}: transmit buffer larger than 1 MiB dropped");
                }

                Complete(queue, chain, 0);
            }
        }
        while (!queue.IsBroken && queue.EnableNotification());
    }

    private void ProcessReceive(Virtqueue queue)
    {
        while (true)
        {
            if (_partial is null)
            {
                if (!_pending.TryDequeue(out _partial))
                {
                    queue.EnableNotification();
                    return;
                }

                _partialOffset = 0;
            }

            if (!queue.TryPop(out var chain))
            {
                if (!queue.IsBroken && queue.EnableNotification())
                {
                    continue;
                }

                return;
            }

            int n = (int)Math.Min(chain.WritableLength, (ulong)(_partial.Length - _partialOffset));
            chain.TryWrite(Memory, 0, _partial.AsSpan(_partialOffset, n));
            Complete(queue, chain, (uint)n);
            Interlocked.Add(ref _bytesIn, n);
            _partialOffset += n;
            if (_partialOffset == _partial.Length)
            {
                Interlocked.Add(ref _pendingBytes, -_partial.Length);
                _partial = null;
            }
        }
    }

    private void ReadInput()
    {
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = _input!.Read(buffer)) > 0)
            {
                SendToGuest(buffer.AsSpan(0, n));
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The host side closed (a disposed NetworkStream throws InvalidOperationException): no more input.
        }
    }
}
