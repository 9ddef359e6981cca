namespace Ringvisor.Devices.Tests.Virtio.Driver;

/// <summary>One buffer the test driver puts in a chain.</summary>
internal readonly record struct DriverBuffer(ulong Address, uint Length, bool DeviceWritable);
