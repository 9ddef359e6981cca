// Feeds every device garbage: random descriptors (addresses in RAM, past RAM, straddling its end; random lengths,
// flags and next indices; indirect tables of random contents and lengths), random avail indices and heads, bad
// queue sizes and ring addresses, notifications for queues that do not exist, and random common-config writes.
// Nothing may throw out of the device, and the failures must show in its status and statistics.
using Ringvisor.Devices.Tests.Virtio.Driver;
using Ringvisor.Devices.Virtio;
using Ringvisor.Devices.Virtio.Block;
using Ringvisor.Devices.Virtio.Console;
using Ringvisor.Devices.Virtio.Net;
using Ringvisor.Devices.Virtio.Rng;

namespace Ringvisor.Devices.Tests.Virtio;

public sealed class HostileRingTests
{
    private const int Iterations = 3000;

    public static TheoryData<string, int> Cases => new()
    {
        { "blk", 1001 },
        { "net", 2002 },
        { "console", 3003 },
        { "rng", 4004 },
        { "blk", 5 },
        { "net", 6 },
        { "console", 7 },
        { "rng", 8 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void GarbageRings_NeverThrow_FailuresShowInStatusAndStatistics(string kind, int seed)
    {
        var rnd = new Random(seed);
        string? image = null;
        var backend = new FakeNetworkBackend();
        VirtioDevice device;
        switch (kind)
        {
            case "blk":
                image = Path.Combine(Path.GetTempPath(), $"rv-hostile-{Guid.NewGuid():N}.img");
                File.WriteAllBytes(image, new byte[1 << 20]);
                device = VirtioBlockDevice.Open("disk", image, readOnly: false);
                break;
            case "net":
                device = new VirtioNetDevice("net", backend);
                break;
            case "console":
                device = new VirtioConsoleDevice("con", null, Stream.Null);
                break;
            default:
                device = new VirtioRngDevice();
                break;
        }

        using var rig = new DeviceRig(device);
        var d = rig.Driver;
        var mem = rig.Machine.Memory;
        ulong ramEnd = mem.End;
        var queues = new DriverQueue?[device.QueueCount];
        int needsResetSeen = 0;
        try
        {
            for (int i = 0; i < Iterations; i++)
            {
                bool broken = (d.DeviceStatus & VirtioDeviceStatus.DeviceNeedsReset) != 0;
                if (broken)
                {
                    needsResetSeen++;
                }

                if (i == 0 || broken || rnd.Next(40) == 0)
                {
                    Setup(rnd, d, queues, ramEnd);
                }

                int action = rnd.Next(100);
                if (action < 70)
                {
                    int qi = rnd.Next(queues.Length);
                    if (queues[qi] is { } q)
                    {
                        Scribble(rnd, mem, q, ramEnd);
                    }
                }
                else if (action < 80 && kind == "net")
                {
                    var frame = new byte[rnd.Next(0, 2000)];
                    rnd.NextBytes(frame);
                    backend.Inject(frame);
                }
                else if (action < 85)
                {
                    // Random common-config write (any field, any width, any value), except a reset half the time.
                    int off = rnd.Next(0, 0x40);
                    var bytes = new byte[1 << rnd.Next(0, 3)];
                    rnd.NextBytes(bytes);
                    rig.Machine.Mmio.Write(d.CommonBase + (ulong)off, bytes);
                }

                // Kick a queue: existing, out of range, or at a misaligned notify offset.
                ulong notify = d.NotifyBase + (ulong)rnd.Next(0, 4 * (queues.Length + 2));
                d.Write16(notify, (ushort)rnd.Next(0, 0x10000));
                if (rnd.Next(4) == 0)
                {
                    d.ReadIsr();
                }
            }
        }
        finally
        {
            rig.Dispose();
            if (image is not null)
            {
                File.Delete(image);
            }
        }

        var s = device.Statistics;
        Assert.Equal(0, s.InternalErrors);
        Assert.True(s.RingErrors > 0, $"{kind}: no ring errors counted");
        Assert.True(s.NeedsResetEvents > 0 && needsResetSeen > 0, $"{kind}: DEVICE_NEEDS_RESET never shown");
        Assert.True(s.Requests > 0, $"{kind}: garbage never produced a completed request");
        Assert.NotNull(s.LastError);
    }

    private static void Setup(Random rnd, TestVirtioDriver d, DriverQueue?[] queues, ulong ramEnd)
    {
        ulong offered = d.ReadDeviceFeatures();
        ulong features = (offered & (ulong)rnd.NextInt64()) | VirtioFeatures.Bit(VirtioFeatures.Version1);
        if (rnd.Next(20) == 0)
        {
            features |= 1UL << rnd.Next(64); // maybe something not offered: FEATURES_OK refused
        }

        d.Negotiate(features);
        for (int q = 0; q < queues.Length; q++)
        {
            ushort size = rnd.Next(10) switch
            {
                0 => (ushort)rnd.Next(0, 600),
                _ => (ushort)(1 << rnd.Next(0, 6)),
            };
            queues[q] = d.SetupQueue(q, size);
            if (rnd.Next(15) == 0)
            {
                // Re-point a ring at garbage before enabling is too late here; instead reset and use bad addresses.
                var c = d.CommonBase;
                d.Status = 0;
                d.Negotiate(features);
                d.Write16(c + TestVirtioDriver.CommonQueueSelect, (ushort)q);
                d.Write16(c + TestVirtioDriver.CommonQueueSize, 8);
                d.Write64(c + TestVirtioDriver.CommonQueueDesc, RandomAddress(rnd, ramEnd));
                d.Write64(c + TestVirtioDriver.CommonQueueDriver, RandomAddress(rnd, ramEnd));
                d.Write64(c + TestVirtioDriver.CommonQueueDevice, RandomAddress(rnd, ramEnd));
                d.Write16(c + TestVirtioDriver.CommonQueueEnable, 1);
                queues[q] = null;
            }
        }

        d.DriverOk();
    }

    private static void Scribble(Random rnd, Ringvisor.Core.Memory.GuestMemory mem, DriverQueue q, ulong ramEnd)
    {
        if (q.Size == 0)
        {
            return;
        }

        int n = rnd.Next(1, 6);
        for (int k = 0; k < n; k++)
        {
            ulong desc = q.DescriptorTable + (16UL * (ulong)rnd.Next(q.Size));
            WriteRandomDescriptor(rnd, mem, desc, ramEnd, q.Size);
        }

        if (rnd.Next(5) == 0)
        {
            // An indirect table full of garbage somewhere in RAM, referenced from a descriptor.
            ulong table = (ulong)rnd.NextInt64(0x10_0000, (long)ramEnd - 0x1000) & ~0xFUL;
            int count = rnd.Next(1, 20);
            for (int k = 0; k < count; k++)
            {
                WriteRandomDescriptor(rnd, mem, table + (16UL * (ulong)k), ramEnd, (ushort)count);
            }

            ulong desc = q.DescriptorTable + (16UL * (ulong)rnd.Next(q.Size));
            mem.TryWrite(desc, table + (ulong)(rnd.Next(8) == 0 ? 8 : 0));
            mem.TryWrite(desc + 8, (uint)(rnd.Next(6) == 0 ? rnd.Next() : 16 * count));
            mem.TryWrite(desc + 12, (ushort)(4 | (rnd.Next(4) == 0 ? 1 : 0)));
        }

        int heads = rnd.Next(1, 4);
        for (int k = 0; k < heads; k++)
        {
            q.Publish(rnd.Next(8) == 0 ? (ushort)rnd.Next(0x10000) : (ushort)rnd.Next(q.Size));
        }

        if (rnd.Next(10) == 0)
        {
            // A wild avail index.
            mem.TryWrite(q.AvailRing + 2, (ushort)rnd.Next(0x10000));
        }

        if (rnd.Next(10) == 0)
        {
            q.SetUsedEvent((ushort)rnd.Next(0x10000));
        }
    }

    private static void WriteRandomDescriptor(Random rnd, Ringvisor.Core.Memory.GuestMemory mem, ulong at, ulong ramEnd, ushort size)
    {
        ulong addr = RandomAddress(rnd, ramEnd);
        uint len = rnd.Next(6) switch
        {
            0 => (uint)rnd.Next(),
            1 => 0,
            2 => (uint)rnd.Next(1, 17),
            _ => (uint)rnd.Next(1, 0x4000),
        };
        ushort flags = rnd.Next(8) == 0 ? (ushort)rnd.Next(0x10000) : (ushort)rnd.Next(8);
        ushort next = rnd.Next(6) == 0 ? (ushort)rnd.Next(0x10000) : (ushort)rnd.Next(Math.Max(1, (int)size));
        mem.TryWrite(at, addr);
        mem.TryWrite(at + 8, len);
        mem.TryWrite(at + 12, flags);
        mem.TryWrite(at + 14, next);
    }

    private static ulong RandomAddress(Random rnd, ulong ramEnd) => rnd.Next(6) switch
    {
        0 => (ulong)rnd.NextInt64(),                           // far outside RAM
        1 => ramEnd - (ulong)rnd.Next(1, 64),                  // straddling the end of RAM
        2 => ulong.MaxValue - (ulong)rnd.Next(0, 16),          // wraps around
        _ => (ulong)rnd.NextInt64(0x20_0000, (long)ramEnd - 0x10000),
    };
}
