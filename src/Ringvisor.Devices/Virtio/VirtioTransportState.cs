using Ringvisor.Devices.Pci;

namespace Ringvisor.Devices.Virtio;

/// <summary>
/// Saved state of a virtio-pci device (version 1): PCI configuration, negotiation and status, and every queue.
/// Device-internal buffers (frames waiting for the guest, console input) are not kept: like frames in flight on a
/// wire they are lost across a snapshot. Disk contents live in the image file.
/// </summary>
public sealed record VirtioTransportState(
    int Version,
    PciFunctionState Pci,
    VirtioDeviceStatus Status,
    uint DeviceFeatureSelect,
    uint DriverFeatureSelect,
    ulong DriverFeatures,
    ushort ConfigVector,
    ushort QueueSelect,
    int ConfigGeneration,
    int Isr,
    IReadOnlyList<VirtqueueState> Queues)
{
    public const int CurrentVersion = 1;
}
