// virtio-net (VIRTIO 1.2 §5.1): one receive and one transmit queue, the 12-byte virtio_net_hdr, a MAC address,
// link status, and optional mergeable receive buffers. No checksum or segmentation offloads are offered, so
// every frame crosses whole and with a valid checksum; a transmit header asking for offload work is dropped.
// Frames go to and come from an INetworkBackend (a switch port or a TAP device, in Ringvisor.Net).
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text;
using Ringvisor.Core.Hashing;
using Ringvisor.Core.Net;

namespace Ringvisor.Devices.Virtio.Net;

public sealed class VirtioNetDevice : VirtioDevice, IDisposable
{
    public const int ReceiveQueue = 0;
    public const int TransmitQueue = 1;

    // §5.1.3 feature bits.
    public const int FeatureMac = 5;
    public const int FeatureMergeableRxBuffers = 15;
    public const int FeatureStatus = 16;

    /// <summary>§5.1.4: VIRTIO_NET_S_LINK_UP.</summary>
    public const ushort StatusLinkUp = 1;

    /// <summary>§5.1.6: struct virtio_net_hdr with num_buffers (always present with VERSION_1).</summary>
    public const int HeaderSize = 12;

    /// <summary>§5.1.6: VIRTIO_NET_HDR_GSO_NONE; flags bit 0 is VIRTIO_NET_HDR_F_NEEDS_CSUM.</summary>
    private const byte GsoNone = 0;
    private const byte FlagNeedsChecksum = 1;

    /// <summary>Largest frame accepted either way: a 64 KiB IP packet plus Ethernet and VLAN headers.</summary>
    public const int MaxFrameSize = 65536 + 18;

    /// <summary>Frames queued for the guest while it has no receive buffers; more are dropped (like a full NIC FIFO).</summary>
    private const int MaxPendingRxFrames = 1024;

    public const ushort QueueSize = 256;

    private const int ConfigBytes = 12;

    private readonly INetworkBackend _backend;
    private readonly bool _offerMergeable;
    private readonly ConcurrentQueue<byte[]> _rxPending = new();
    private readonly List<(ushort Head, ChainSegment[] Segments, ulong Length)> _mergeScratch = [];
    private int _rxPendingCount;
    private volatile bool _active;
    private bool _started;
    private long _txFrames, _txDropped, _rxFrames, _rxDropped;

    /// <param name="name">Device name (also the seed of the default MAC).</param>
    /// <param name="backend">Where frames go.</param>
    /// <param name="mac">The MAC address, or null for <see cref="DeriveMac"/>(<paramref name="name"/>).</param>
    /// <param name="offerMergeableRxBuffers">Offer VIRTIO_NET_F_MRG_RXBUF.</param>
    public VirtioNetDevice(string name, INetworkBackend backend, byte[]? mac = null, bool offerMergeableRxBuffers = true)
        : base(name, VirtioDeviceType.Network, 2, QueueSize)
    {
        if (mac is not null && (mac.Length != 6 || (mac[0] & 1) != 0))
        {
            throw new ArgumentException($"virtio-net '{name}': MAC must be 6 bytes and unicast", nameof(mac));
        }

        _backend = backend;
        Mac = mac ?? DeriveMac(name);
        _offerMergeable = offerMergeableRxBuffers;
        backend.LinkChanged += OnBackendLinkChanged;
    }

    public byte[] Mac { get; }

    public INetworkBackend Backend => _backend;

    public long TxFrames => Interlocked.Read(ref _txFrames);

    public long TxDropped => Interlocked.Read(ref _txDropped);

    public long RxFrames => Interlocked.Read(ref _rxFrames);

    public long RxDropped => Interlocked.Read(ref _rxDropped);

    public override ulong DeviceFeatures =>
        VirtioFeatures.Bit(FeatureMac) | VirtioFeatures.Bit(FeatureStatus) | (_offerMergeable ? VirtioFeatures.Bit(FeatureMergeableRxBuffers) : 0);

    public override int ConfigSize => ConfigBytes;

    /// <summary>Class 02h network, subclass 00h Ethernet.</summary>
    public override uint PciClassCode => 0x02_00_00;

    /// <summary>
    /// A stable, locally administered unicast MAC from a name ("vm1/net0"): 52:56 followed by four bytes of
    /// SHA-256 of the name. 0x52 has the locally-administered bit set and the multicast bit clear (IEEE 802 §8.2).
    /// </summary>
    public static byte[] DeriveMac(string seed)
    {
        var h = Sha256.HashData(Encoding.UTF8.GetBytes(seed));
        return [0x52, 0x56, h[0], h[1], h[2], h[3]];
    }

    public static string FormatMac(ReadOnlySpan<byte> mac) =>
        $"{mac[0]:x2}:{mac[1]:x2}:{mac[2]:x2}:{mac[3]:x2}:{mac[4]:x2}:{mac[5]:x2}";

    /// <summary>The backend's link changed: the driver re-reads the status field after a configuration interrupt.</summary>
    public void LinkStatusChanged() => Transport.ConfigChanged();

    private void OnBackendLinkChanged()
    {
        if (IsAttached)
        {
            LinkStatusChanged();
        }
    }

    public override void ReadConfig(int offset, Span<byte> data)
    {
        Span<byte> c = stackalloc byte[ConfigBytes];
        c.Clear();
        Mac.CopyTo(c);
        BinaryPrimitives.WriteUInt16LittleEndian(c[6..], _backend.LinkUp ? StatusLinkUp : (ushort)0);
        BinaryPrimitives.WriteUInt16LittleEndian(c[8..], 1); // max_virtqueue_pairs (meaningful only with MQ)
        c.Slice(offset, data.Length).CopyTo(data);
    }

    public void Dispose() => _backend.Dispose();

    protected internal override void Activate()
    {
        _active = true;
        if (!_started)
        {
            _started = true;
            _backend.Start(OnFrameFromBackend);
        }
    }

    protected internal override void Reset()
    {
        _active = false;
        while (_rxPending.TryDequeue(out _))
        {
            Interlocked.Decrement(ref _rxPendingCount);
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

    private void OnFrameFromBackend(ReadOnlySpan<byte> frame)
    {
        if (!_active || frame.Length > MaxFrameSize || Interlocked.Increment(ref _rxPendingCount) > MaxPendingRxFrames)
        {
            if (_active && frame.Length <= MaxFrameSize)
            {
                Interlocked.Decrement(ref _rxPendingCount);
            }

            Interlocked.Increment(ref _rxDropped);
            return;
        }

        _rxPending.Enqueue(frame.ToArray());
        Transport.RequestProcessing(ReceiveQueue);
    }

    private void ProcessTransmit(Virtqueue queue)
    {
        byte[]? buffer = null;
        do
        {
            while (queue.TryPop(out var chain))
            {
                if (chain.WritableLength != 0)
                {
                    // §5.1.6.2: transmit buffers are device-readable; a writable part is ignored and counted.
                    Statistics.CountRequestError($"{Name}: transmit chain has {chain.WritableLength} device-writable bytes");
                }

                ulong length = chain.ReadableLength;
                if (length < HeaderSize || length - HeaderSize > MaxFrameSize)
                {
                    DropTx("transmit buffer shorter than the header or longer than the largest frame");
                    Complete(queue, chain, 0);
                    continue;
                }

                buffer = buffer is not null && buffer.Length >= (int)length ? buffer : new byte[Math.Max((int)length, 2048)];
                var all = buffer.AsSpan(0, (int)length);
                if (!chain.TryRead(Memory, 0, all))
                {
                    DropTx("transmit buffer unreadable");
                    Complete(queue, chain, 0);
                    continue;
                }

                byte flags = all[0];
                byte gso = all[1];
                if (gso != GsoNone || (flags & FlagNeedsChecksum) != 0)
                {
                    // We offered neither CSUM nor HOST_TSO*: the driver may not ask for them (§5.1.6.2.1).
                    DropTx($"transmit header asks for an offload that was not negotiated (flags {flags}, gso {gso})");
                }
                else if (_backend.Send(all[HeaderSize..]))
                {
                    Interlocked.Increment(ref _txFrames);
                }
                else
                {
                    Interlocked.Increment(ref _txDropped);
                }

                Complete(queue, chain, 0);
            }
        }
        while (!queue.IsBroken && queue.EnableNotification());
    }

    private void DropTx(string why)
    {
        Interlocked.Increment(ref _txDropped);
        Statistics.CountRequestError($"{Name}: {why}");
    }

    private void ProcessReceive(Virtqueue queue)
    {
        bool mergeable = HasFeature(FeatureMergeableRxBuffers);
        while (_rxPending.TryPeek(out var frame))
        {
            ushort availSeen = queue.PeekAvailIndex();
            bool delivered = mergeable ? ReceiveMergeable(queue, frame) : ReceiveSingle(queue, frame);
            if (queue.IsBroken)
            {
                return;
            }

            if (!delivered)
            {
                // Out of buffers (or too few for this frame): ask to be notified on the driver's next addition,
                // and look again only if it added some meanwhile.
                if (queue.WaitForMoreBuffers(availSeen))
                {
                    continue;
                }

                return;
            }

            _rxPending.TryDequeue(out _);
            Interlocked.Decrement(ref _rxPendingCount);
        }

        queue.EnableNotification();
    }

    private bool ReceiveSingle(Virtqueue queue, byte[] frame)
    {
        while (queue.TryPop(out var chain))
        {
            ulong needed = HeaderSize + (ulong)frame.Length;
            if (chain.WritableLength < needed)
            {
                // §5.1.6.3.1 asks for buffers of at least 1526 bytes; a short one gets nothing and goes back empty.
                Statistics.CountRequestError($"{Name}: receive buffer of {chain.WritableLength} bytes too small for a {frame.Length}-byte frame");
                Interlocked.Increment(ref _rxDropped);
                Complete(queue, chain, 0);
                return true;
            }

            Span<byte> header = stackalloc byte[HeaderSize];
            header.Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(header[10..], 1); // num_buffers
            if (!chain.TryWrite(Memory, 0, header) || !chain.TryWrite(Memory, HeaderSize, frame))
            {
                Interlocked.Increment(ref _rxDropped);
                Complete(queue, chain, 0);
                return true;
            }

            Interlocked.Increment(ref _rxFrames);
            Complete(queue, chain, (uint)needed);
            return true;
        }

        return false;
    }

    private bool ReceiveMergeable(Virtqueue queue, byte[] frame)
    {
        ulong needed = HeaderSize + (ulong)frame.Length;
        ulong have = 0;
        _mergeScratch.Clear();
        while (have < needed && queue.TryPop(out var chain))
        {
            var segs = new ChainSegment[chain.Writable.Count];
            for (int i = 0; i < segs.Length; i++)
            {
                segs[i] = chain.Writable[i];
            }

            _mergeScratch.Add((chain.Head, segs, chain.WritableLength));
            have += chain.WritableLength;
            if (_mergeScratch.Count > queue.Size)
            {
                break;
            }
        }

        if (queue.IsBroken)
        {
            return false;
        }

        if (have < needed)
        {
            // Not enough buffers yet: give them all back and try again after the next notification.
            for (int i = 0; i < _mergeScratch.Count; i++)
            {
                queue.Unpop();
            }

            return false;
        }

        // Assemble header + frame and scatter it over the buffers in order (§5.1.6.4.2).
        var data = new byte[needed];
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(10), (ushort)_mergeScratch.Count);
        frame.CopyTo(data, HeaderSize);
        ulong pos = 0;
        foreach (var (head, segs, _) in _mergeScratch)
        {
            ulong start = pos;
            foreach (var s in segs)
            {
                if (pos >= needed)
                {
                    break;
                }

                int n = (int)Math.Min(s.Length, needed - pos);
                Memory.Write(s.Address, data.AsSpan((int)pos, n));
                pos += (ulong)n;
            }

            queue.PushUsed(head, (uint)(pos - start));
            Statistics.CountRequest();
        }

        Interlocked.Increment(ref _rxFrames);
        return true;
    }
}
