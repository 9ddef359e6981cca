// A virtio-blk device over a temporary image file, driven by the test driver.
using System.Buffers.Binary;
using Ringvisor.Devices.Virtio;
using Ringvisor.Devices.Virtio.Block;

namespace Ringvisor.Devices.Tests.Virtio.Driver;

internal sealed class BlockRig : IDisposable
{
    private BlockRig(TestMachine m, string path, VirtioBlockDevice device, VirtioPciTransport transport, TestVirtioDriver driver, DriverQueue queue)
    {
        Machine = m;
        ImagePath = path;
        Device = device;
        Transport = transport;
        Driver = driver;
        Queue = queue;
    }

    public TestMachine Machine { get; }

    public string ImagePath { get; }

    public VirtioBlockDevice Device { get; }

    public VirtioPciTransport Transport { get; }

    public TestVirtioDriver Driver { get; }

    public DriverQueue Queue { get; }

    public static BlockRig Create(long imageBytes = 1 << 20, bool readOnly = false, bool worker = false, string? serial = null,
                                  ulong featureMask = ulong.MaxValue, bool msix = false)
    {
        string path = Path.Combine(Path.GetTempPath(), $"rv-blk-{Guid.NewGuid():N}.img");
        using (var f = File.Create(path))
        {
            f.SetLength(imageBytes);
        }

        var m = new TestMachine();
        var dev = VirtioBlockDevice.Open("disk0", path, readOnly, serial);
        var t = new VirtioPciTransport(dev, m.Memory, worker);
        var a = m.Pci.AddDevice(t);
        var d = new TestVirtioDriver(m, a);
        d.NegotiateOffered(featureMask);
        if (msix)
        {
            d.EnableMsix(2);
        }

        var q = d.SetupQueue(0, 16, msix ? (ushort)0 : VirtioPciTransport.NoVector);
        d.DriverOk();
        return new BlockRig(m, path, dev, t, d, q);
    }

    /// <summary>Issues one request; returns the status byte and fills <paramref name="inData"/> for reads.</summary>
    public byte Request(uint type, ulong sector, byte[]? outData, int inLength, out byte[] inData, bool indirect = false)
    {
        var alloc = Machine.Allocator;
        ulong hdr = alloc.Allocate(16);
        Span<byte> h = stackalloc byte[16];
        h.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(h, type);
        BinaryPrimitives.WriteUInt64LittleEndian(h[8..], sector);
        Machine.Memory.Write(hdr, h);
        var bufs = new List<DriverBuffer> { new(hdr, 16, false) };
        if (outData is { Length: > 0 })
        {
            ulong o = alloc.Allocate((ulong)outData.Length);
            Machine.Memory.Write(o, outData);
            bufs.Add(new DriverBuffer(o, (uint)outData.Length, false));
        }

        ulong inAddr = 0;
        if (inLength > 0)
        {
            inAddr = alloc.Allocate((ulong)inLength);
            bufs.Add(new DriverBuffer(inAddr, (uint)inLength, true));
        }

        ulong status = alloc.Allocate(1);
        Machine.Memory.Write(status, [0xEE]);
        bufs.Add(new DriverBuffer(status, 1, true));
        ushort head = Queue.Add(bufs, indirect);
        var (usedHead, len) = Queue.WaitUsed();
        if (usedHead != head)
        {
            throw new InvalidOperationException($"used head {usedHead} != {head}");
        }

        inData = new byte[inLength];
        if (inLength > 0)
        {
            Machine.Memory.Read(inAddr, inData);
        }

        var s = new byte[1];
        Machine.Memory.Read(status, s);
        LastUsedLength = len;
        return s[0];
    }

    public uint LastUsedLength { get; private set; }

    public static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    public void Dispose()
    {
        Transport.Dispose();
        Device.Dispose();
        Machine.Dispose();
        File.Delete(ImagePath);
    }
}
