// virtio-blk (VIRTIO 1.2 §5.2) over a raw image file: read, write, flush, discard, write-zeroes and get-id, with a
// read-only mode. Requests are validated against the image's capacity and the chain's shape; a malformed request
// that still has a status byte fails with VIRTIO_BLK_S_IOERR/UNSUPP (§5.2.6), one without a status byte breaks
// the queue (the transport sets DEVICE_NEEDS_RESET).
using System.Buffers.Binary;
using System.Text;

namespace Ringvisor.Devices.Virtio.Block;

public sealed class VirtioBlockDevice : VirtioDevice, IDisposable
{
    public const int SectorSize = 512;

    /// <summary>§5.2.6: the serial returned by GET_ID is at most 20 bytes (VIRTIO_BLK_ID_BYTES).</summary>
    public const int IdBytes = 20;

    // §5.2.3 feature bits.
    public const int FeatureSizeMax = 1;
    public const int FeatureSegMax = 2;
    public const int FeatureReadOnly = 5;
    public const int FeatureBlockSize = 6;
    public const int FeatureFlush = 9;
    public const int FeatureDiscard = 13;
    public const int FeatureWriteZeroes = 14;

    // §5.2.6 request types.
    public const uint TypeIn = 0;
    public const uint TypeOut = 1;
    public const uint TypeFlush = 4;
    public const uint TypeGetId = 8;
    public const uint TypeDiscard = 11;
    public const uint TypeWriteZeroes = 13;

    // §5.2.6 status values.
    public const byte StatusOk = 0;
    public const byte StatusIoError = 1;
    public const byte StatusUnsupported = 2;

    /// <summary>struct virtio_blk_req header: type, reserved, sector.</summary>
    public const int RequestHeaderSize = 16;

    /// <summary>struct virtio_blk_discard_write_zeroes: sector, num_sectors, flags.</summary>
    public const int DiscardSegmentSize = 16;

    public const ushort QueueSize = 256;

    /// <summary>Largest single data buffer we accept (size_max), and per-request discard limits.</summary>
    private const uint SizeMax = 1 << 20;
    private const uint MaxDiscardSectors = 0x3F_FFFF;
    private const uint MaxDiscardSegments = 32;

    /// <summary>Discard granularity in sectors: 4 KiB, the host file system's hole granularity.</summary>
    private const uint DiscardAlignment = 8;

    /// <summary>§5.2.6.2: VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP.</summary>
    private const uint WriteZeroesFlagUnmap = 1;

    /// <summary>sizeof(struct virtio_blk_config) up to write_zeroes_may_unmap and its padding (§5.2.4).</summary>
    private const int ConfigBytes = 0x3C;

    private readonly BlockImage _image;
    private readonly byte[] _serial;
    private long _bytesRead;
    private long _bytesWritten;
    private long _flushes;

    public VirtioBlockDevice(string name, BlockImage image, string? serial = null)
        : base(name, VirtioDeviceType.Block, 1, QueueSize)
    {
        _image = image;
        CapacitySectors = (ulong)image.Length / SectorSize;
        var s = Encoding.ASCII.GetBytes(serial ?? Path.GetFileNameWithoutExtension(image.Path));
        _serial = s.Length > IdBytes ? s[..IdBytes] : s;
    }

    /// <summary>Opens <paramref name="path"/> (and locks it) and makes a device for it.</summary>
    /// <exception cref="IOException">See <see cref="BlockImage.Open"/>.</exception>
    public static VirtioBlockDevice Open(string name, string path, bool readOnly, string? serial = null) =>
        new(name, BlockImage.Open(path, readOnly), serial);

    public BlockImage Image => _image;

    public ulong CapacitySectors { get; }

    public bool ReadOnly => _image.ReadOnly;

    public long BytesRead => Interlocked.Read(ref _bytesRead);

    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    public long Flushes => Interlocked.Read(ref _flushes);

    public override ulong DeviceFeatures
    {
        get
        {
            ulong f = VirtioFeatures.Bit(FeatureSizeMax) | VirtioFeatures.Bit(FeatureSegMax) | VirtioFeatures.Bit(FeatureBlockSize) |
                      VirtioFeatures.Bit(FeatureFlush);
            return ReadOnly
                ? f | VirtioFeatures.Bit(FeatureReadOnly)
                : f | VirtioFeatures.Bit(FeatureDiscard) | VirtioFeatures.Bit(FeatureWriteZeroes);
        }
    }

    public override int ConfigSize => ConfigBytes;

    /// <summary>Class 01h mass storage, subclass 00h SCSI (what QEMU presents for virtio-blk).</summary>
    public override uint PciClassCode => 0x01_00_00;

    public override void ReadConfig(int offset, Span<byte> data)
    {
        Span<byte> c = stackalloc byte[ConfigBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(c[0x00..], CapacitySectors);
        BinaryPrimitives.WriteUInt32LittleEndian(c[0x08..], SizeMax);
        BinaryPrimitives.WriteUInt32LittleEndian(c[0x0C..], (uint)(MaxQueueSize - 2)); // seg_max: the header and status take two
        BinaryPrimitives.WriteUInt32LittleEndian(c[0x14..], SectorSize);                // blk_size
        BinaryPrimitives.WriteUInt16LittleEndian(c[0x22..], 1);                         // num_queues
        BinaryPrimitives.WriteUInt32LittleEndian(c[0x24..], MaxDiscardSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(c[0x28..], MaxDiscardSegments);
        BinaryPrimitives.WriteUInt32LittleEndian(c[0x2C..], DiscardAlignment);
        BinaryPrimitives.WriteUInt32LittleEndian(c[0x30..], MaxDiscardSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(c[0x34..], MaxDiscardSegments);
        c[0x38] = 1; // write_zeroes_may_unmap
        c.Slice(offset, data.Length).CopyTo(data);
    }

    public void Dispose() => _image.Dispose();

    protected internal override void ProcessQueue(Virtqueue queue)
    {
        do
        {
            while (queue.TryPop(out var chain))
            {
                if (chain.WritableLength == 0)
                {
                    // No status byte to fail the request with: the driver broke §5.2.6.1.
                    Statistics.CountRingError($"{Name}: request without a status byte");
                    queue.Fail(VirtqueueError.BadRequest);
                    return;
                }

                uint written = Handle(chain, out byte status);
                if (status != StatusOk)
                {
                    Statistics.CountRequestError($"{Name}: request failed with status {status}");
                }

                chain.TryWrite(Memory, chain.WritableLength - 1, [status]);
                Complete(queue, chain, written + 1);
            }
        }
        while (!queue.IsBroken && queue.EnableNotification());
    }

    /// <returns>Data bytes written to the driver (excluding the status byte).</returns>
    private uint Handle(DescriptorChain chain, out byte status)
    {
        Span<byte> header = stackalloc byte[RequestHeaderSize];
        if (!chain.TryRead(Memory, 0, header))
        {
            status = StatusIoError;
            return 0;
        }

        uint type = BinaryPrimitives.ReadUInt32LittleEndian(header);
        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        ulong inData = chain.WritableLength - 1;             // device-writable bytes before the status byte
        ulong outData = chain.ReadableLength - RequestHeaderSize; // device-readable bytes after the header
        switch (type)
        {
            case TypeIn:
                status = outData != 0 ? StatusIoError : ReadSectors(chain, sector, inData);
                return status == StatusOk ? (uint)inData : 0;
            case TypeOut:
                status = inData != 0 ? StatusIoError : ReadOnly ? StatusIoError : WriteSectors(chain, sector, outData);
                return 0;
            case TypeFlush:
                Interlocked.Increment(ref _flushes);
                status = _image.Flush() ? StatusOk : StatusIoError;
                return 0;
            case TypeGetId:
                Span<byte> id = stackalloc byte[IdBytes];
                id.Clear();
                _serial.CopyTo(id);
                if (inData < IdBytes)
                {
                    status = StatusIoError;
                    return 0;
                }

                status = chain.TryWrite(Memory, 0, id) ? StatusOk : StatusIoError;
                return IdBytes;
            case TypeDiscard:
            case TypeWriteZeroes:
                if (ReadOnly)
                {
                    // Not offered on read-only disks (§5.2.6.2 lets the device fail them).
                    status = StatusUnsupported;
                    return 0;
                }

                status = inData != 0 ? StatusIoError : DiscardOrZero(chain, type == TypeDiscard, outData);
                return 0;
            default:
                status = StatusUnsupported;
                return 0;
        }
    }

    private bool RangeOk(ulong sector, ulong bytes) =>
        bytes % SectorSize == 0 && sector <= CapacitySectors && bytes / SectorSize <= CapacitySectors - sector;

    private byte ReadSectors(DescriptorChain chain, ulong sector, ulong bytes)
    {
        if (!RangeOk(sector, bytes))
        {
            return StatusIoError;
        }

        long fileOffset = (long)(sector * SectorSize);
        var image = _image;
        bool ok = chain.ForEachSpan(Memory, writable: true, 0, bytes, (span, pos) => image.Read(fileOffset + (long)pos, span));
        if (!ok)
        {
            return StatusIoError;
        }

        Interlocked.Add(ref _bytesRead, (long)bytes);
        return StatusOk;
    }

    private byte WriteSectors(DescriptorChain chain, ulong sector, ulong bytes)
    {
        if (!RangeOk(sector, bytes))
        {
            return StatusIoError;
        }

        long fileOffset = (long)(sector * SectorSize);
        var image = _image;
        bool ok = chain.ForEachSpan(Memory, writable: false, RequestHeaderSize, bytes, (span, pos) => image.Write(fileOffset + (long)pos, span));
        if (!ok)
        {
            return StatusIoError;
        }

        Interlocked.Add(ref _bytesWritten, (long)bytes);
        return StatusOk;
    }

    private byte DiscardOrZero(DescriptorChain chain, bool discard, ulong bytes)
    {
        // §5.2.6: the data is an array of struct virtio_blk_discard_write_zeroes.
        if (bytes == 0 || bytes % DiscardSegmentSize != 0 || bytes / DiscardSegmentSize > MaxDiscardSegments)
        {
            return StatusIoError;
        }

        Span<byte> seg = stackalloc byte[DiscardSegmentSize];
        for (ulong off = 0; off < bytes; off += DiscardSegmentSize)
        {
            if (!chain.TryRead(Memory, RequestHeaderSize + off, seg))
            {
                return StatusIoError;
            }

            ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(seg);
            uint count = BinaryPrimitives.ReadUInt32LittleEndian(seg[8..]);
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(seg[12..]);

            // §5.2.6.2: unknown flags, and the unmap flag on a discard, make the request unsupported.
            if ((flags & ~WriteZeroesFlagUnmap) != 0 || (discard && flags != 0))
            {
                return StatusUnsupported;
            }

            if (count > MaxDiscardSectors || !RangeOk(sector, (ulong)count * SectorSize))
            {
                return StatusIoError;
            }

            long offset = (long)(sector * SectorSize);
            long length = (long)count * SectorSize;
            bool ok = discard ? _image.Discard(offset, length) : _image.WriteZeroes(offset, length, (flags & WriteZeroesFlagUnmap) != 0);
            if (!ok)
            {
                return StatusIoError;
            }
        }

        return StatusOk;
    }
}
