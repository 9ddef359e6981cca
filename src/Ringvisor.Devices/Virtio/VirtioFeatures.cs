namespace Ringvisor.Devices.Virtio;

/// <summary>Device-independent feature bits (VIRTIO 1.2 §6), as bit numbers.</summary>
public static class VirtioFeatures
{
    /// <summary>VIRTIO_F_INDIRECT_DESC (§2.7.5.3).</summary>
    public const int IndirectDescriptors = 28;

    /// <summary>VIRTIO_F_EVENT_IDX (§2.7.7, §2.7.10).</summary>
    public const int EventIndex = 29;

    /// <summary>VIRTIO_F_VERSION_1: the modern interface; required by this transport (§6.1).</summary>
    public const int Version1 = 32;

    /// <summary>The features the transport and ring implementation offer on behalf of every device.</summary>
    public const ulong TransportFeatures = (1UL << IndirectDescriptors) | (1UL << EventIndex) | (1UL << Version1);

    public static ulong Bit(int feature) => 1UL << feature;
}
