namespace Ringvisor.Devices.Virtio;

/// <summary>Virtio device IDs (VIRTIO 1.2 §5).</summary>
public enum VirtioDeviceType : ushort
{
    Network = 1,
    Block = 2,
    Console = 3,
    Entropy = 4,
}
