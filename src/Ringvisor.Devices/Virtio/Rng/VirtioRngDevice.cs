// virtio-rng / entropy device (VIRTIO 1.2 §5.4): one request queue whose device-writable buffers are filled from
// the host's cryptographic random number generator (Core.Native.HostRandom: the kernel's, on Linux).
using Ringvisor.Core.Native;

namespace Ringvisor.Devices.Virtio.Rng;

public sealed class VirtioRngDevice : VirtioDevice
{
    public const ushort QueueSize = 64;

    /// <summary>At most this many bytes per request; §5.4.6.1 lets the device write fewer than offered.</summary>
    public const int MaxBytesPerRequest = 64 * 1024;

    private long _bytes;

    public VirtioRngDevice(string name = "rng")
        : base(name, VirtioDeviceType.Entropy, 1, QueueSize)
    {
    }

    public long BytesProvided => Interlocked.Read(ref _bytes);

    public override ulong DeviceFeatures => 0;

    public override int ConfigSize => 0;

    /// <summary>Class FFh: a device that fits no defined class.</summary>
    public override uint PciClassCode => 0xFF_00_00;

    public override void ReadConfig(int offset, Span<byte> data) => data.Clear();

    protected internal override void ProcessQueue(Virtqueue queue)
    {
        do
        {
            while (queue.TryPop(out var chain))
            {
                if (chain.ReadableLength != 0)
                {
                    // §5.4.6.1: requests are device-writable buffers only; the readable part is ignored and counted.
                    Statistics.CountRequestError($"{Name}: request has {chain.ReadableLength} device-readable bytes");
                }

                ulong n = Math.Min(chain.WritableLength, MaxBytesPerRequest);
                bool ok = chain.ForEachSpan(Memory, writable: true, 0, n, (span, _) =>
                {
                    HostRandom.Fill(span);
                    return true;
                });
                if (!ok)
                {
                    n = 0;
                }

                Interlocked.Add(ref _bytes, (long)n);
                Complete(queue, chain, (uint)n);
            }
        }
        while (!queue.IsBroken && queue.EnableNotification());
    }
}
