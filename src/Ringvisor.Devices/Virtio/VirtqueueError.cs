namespace Ringvisor.Devices.Virtio;

/// <summary>Why a virtqueue stopped: a guest-supplied ring or descriptor value broke VIRTIO 1.2 §2.7.</summary>
public enum VirtqueueError
{
    None = 0,

    /// <summary>Queue size 0, larger than the maximum, or not a power of two (§2.7).</summary>
    BadQueueSize,

    /// <summary>Ring addresses misaligned (§2.7 alignment table) or outside guest RAM.</summary>
    BadRingAddress,

    /// <summary>avail.idx moved more than the queue size ahead of what the device consumed.</summary>
    BadAvailIndex,

    /// <summary>A head or next index at or beyond the queue size.</summary>
    BadDescriptorIndex,

    /// <summary>A buffer that is not entirely in guest RAM.</summary>
    BadBufferAddress,

    /// <summary>A chain longer than the queue size (this also catches loops) (§2.7.5.3.1).</summary>
    ChainTooLong,

    /// <summary>An indirect descriptor without VIRTIO_F_INDIRECT_DESC, nested, with NEXT, or of a bad length (§2.7.5.3.1).</summary>
    BadIndirect,

    /// <summary>A device-readable descriptor after a device-writable one (§2.7.4.2).</summary>
    BadDescriptorOrder,

    /// <summary>The device could not make sense of a well-formed chain that has no way to report a status.</summary>
    BadRequest,
}
