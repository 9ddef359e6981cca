namespace Ringvisor.Devices.Virtio;

/// <summary>Saved configuration and progress of one split virtqueue.</summary>
public sealed record VirtqueueState(
    ushort Size,
    ushort MsixVector,
    bool Enabled,
    ulong DescriptorTable,
    ulong DriverArea,
    ulong DeviceArea,
    bool IndirectEnabled,
    bool EventIndexEnabled,
    VirtqueueError Error,
    ushort LastAvailIndex,
    ushort NextUsedIndex,
    ushort SignalledUsedIndex);
