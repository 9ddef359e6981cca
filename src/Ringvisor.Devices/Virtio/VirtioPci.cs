// Factories for the machine: each returns a transport ready for PciBus.AddDevice. The transport owns the device
// (disposing it closes the disk image or the network backend) and runs a worker thread per device.
using Ringvisor.Core.Memory;
using Ringvisor.Core.Net;
using Ringvisor.Devices.Virtio.Block;
using Ringvisor.Devices.Virtio.Console;
using Ringvisor.Devices.Virtio.Net;
using Ringvisor.Devices.Virtio.Rng;

namespace Ringvisor.Devices.Virtio;

public static class VirtioPci
{
    /// <summary>virtio-blk over a raw image (locked; see <see cref="BlockImage.Open"/>).</summary>
    /// <exception cref="IOException">The image cannot be opened or is locked by another process.</exception>
    public static VirtioPciTransport Block(GuestMemory memory, string imagePath, bool readOnly = false, string? name = null, string? serial = null) =>
        new(VirtioBlockDevice.Open(name ?? Path.GetFileName(imagePath), imagePath, readOnly, serial), memory);

    /// <summary>virtio-net on <paramref name="backend"/>; a null MAC derives a stable one from <paramref name="name"/>.</summary>
    public static VirtioPciTransport Network(GuestMemory memory, INetworkBackend backend, string name, byte[]? mac = null) =>
        new(new VirtioNetDevice(name, backend, mac), memory);

    /// <summary>virtio-console (one port, /dev/hvc0 in Linux) connected to host streams.</summary>
    public static VirtioPciTransport Console(GuestMemory memory, Stream? hostInput, Stream? hostOutput, string name = "console") =>
        new(new VirtioConsoleDevice(name, hostInput, hostOutput), memory);

    /// <summary>virtio-rng fed by the host's cryptographic RNG.</summary>
    public static VirtioPciTransport Rng(GuestMemory memory, string name = "rng") => new(new VirtioRngDevice(name), memory);
}
