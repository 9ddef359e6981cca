using System.Buffers.Binary;
using Ringvisor.Devices.Tests.Virtio.Driver;
using Ringvisor.Devices.Virtio;
using Ringvisor.Devices.Virtio.Net;

namespace Ringvisor.Devices.Tests.Virtio;

public sealed class VirtioNetDeviceTests : IDisposable
{
    private const int Hdr = VirtioNetDevice.HeaderSize;
    private readonly FakeNetworkBackend _backend = new();
    private readonly VirtioNetDevice _dev;
    private readonly DeviceRig _r;

    public VirtioNetDeviceTests()
    {
        _dev = new VirtioNetDevice("vm1/net0", _backend, [0x52, 0x56, 0, 0, 0, 1]);
        _r = new DeviceRig(_dev);
    }

    public void Dispose() => _r.Dispose();

    [Fact]
    public void Config_ReportsMacAndLinkUp()
    {
        _r.Driver.NegotiateOffered();
        Assert.Equal(0x52, _r.Driver.ReadDeviceConfig8(0));
        Assert.Equal(0x01, _r.Driver.ReadDeviceConfig8(5));
        Assert.Equal(VirtioNetDevice.StatusLinkUp, _r.Driver.ReadDeviceConfig16(6));
        _backend.LinkUp = false;
        Assert.Equal(0, _r.Driver.ReadDeviceConfig16(6));
    }

    [Fact]
    public void DeriveMac_IsStableLocallyAdministeredUnicast()
    {
        var a = VirtioNetDevice.DeriveMac("vm1/net0");
        Assert.Equal(a, VirtioNetDevice.DeriveMac("vm1/net0"));
        Assert.NotEqual(a, VirtioNetDevice.DeriveMac("vm1/net1"));
        Assert.Equal(0, a[0] & 1);
        Assert.Equal(2, a[0] & 2);
    }

    [Fact]
    public void Transmit_HeaderAndFrameInSeparateDescriptors_BackendGetsFrameOnly()
    {
        var (_, tx) = Start();
        var frame = Frame(100, 7);
        ulong h = Put(new byte[Hdr]);
        ulong f = Put(frame);
        tx.Add([new DriverBuffer(h, Hdr, false), new DriverBuffer(f, (uint)frame.Length, false)]);
        Assert.True(tx.TryTakeUsed(out _, out _));
        Assert.True(_backend.Sent.TryDequeue(out var sent));
        Assert.Equal(frame, sent);
        Assert.Equal(1, _dev.TxFrames);
    }

    [Fact]
    public void Transmit_GsoRequestedWithoutNegotiation_DroppedAndCounted()
    {
        var (_, tx) = Start();
        var buf = new byte[Hdr + 60];
        buf[1] = 1; // VIRTIO_NET_HDR_GSO_TCPV4
        ulong a = Put(buf);
        tx.Add([new DriverBuffer(a, (uint)buf.Length, false)]);
        Assert.True(tx.TryTakeUsed(out _, out _));
        Assert.Empty(_backend.Sent);
        Assert.Equal(1, _dev.TxDropped);
        Assert.Equal(1, _dev.Statistics.RequestErrors);
    }

    [Fact]
    public void Receive_WithoutMergeable_OneBufferWithHeaderAndFrame()
    {
        var (rx, _) = Start(~VirtioFeatures.Bit(VirtioNetDevice.FeatureMergeableRxBuffers));
        ulong b = _r.Machine.Allocator.Allocate(1526);
        rx.Add([new DriverBuffer(b, 1526, true)]);
        var frame = Frame(200, 9);
        _backend.Inject(frame);
        var (_, len) = rx.WaitUsed();
        Assert.Equal((uint)(Hdr + frame.Length), len);
        var got = new byte[len];
        _r.Machine.Memory.Read(b, got);
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(got.AsSpan(10)));
        Assert.Equal(frame, got[Hdr..]);
        Assert.Equal(1, _dev.RxFrames);
    }

    [Fact]
    public void Receive_Mergeable_FrameSpreadOverSeveralBuffers()
    {
        var (rx, _) = Start();
        var bufs = new List<ulong>();
        for (int i = 0; i < 4; i++)
        {
            ulong b = _r.Machine.Allocator.Allocate(64);
            bufs.Add(b);
            rx.Add([new DriverBuffer(b, 64, true)]);
        }

        var frame = Frame(150, 11); // 12 + 150 = 162 bytes -> 3 buffers of 64
        _backend.Inject(frame);
        var assembled = new List<byte>();
        for (int i = 0; i < 3; i++)
        {
            Assert.True(rx.TryTakeUsed(out ushort head, out uint len));
            var part = new byte[len];
            _r.Machine.Memory.Read(bufs[i], part);
            assembled.AddRange(part);
        }

        Assert.False(rx.TryTakeUsed(out _, out _));
        var all = assembled.ToArray();
        Assert.Equal(3, BinaryPrimitives.ReadUInt16LittleEndian(all.AsSpan(10)));
        Assert.Equal(frame, all[Hdr..]);
    }

    [Fact]
    public void Receive_BeforeBuffersPosted_DeliveredOnceDriverAddsThem()
    {
        var (rx, _) = Start();
        var frame = Frame(60, 13);
        _backend.Inject(frame);
        Assert.False(rx.TryTakeUsed(out _, out _));
        ulong b = _r.Machine.Allocator.Allocate(2048);
        rx.Add([new DriverBuffer(b, 2048, true)]);
        var (_, len) = rx.WaitUsed();
        Assert.Equal((uint)(Hdr + 60), len);
    }

    [Fact]
    public void LinkStatusChanged_BumpsGenerationAndSendsConfigVector()
    {
        _r.Driver.NegotiateOffered();
        _r.Driver.EnableMsix(3);
        Assert.Equal(2, _r.Driver.SetConfigVector(2));
        _r.Driver.SetupQueue(0, 16, 0);
        _r.Driver.SetupQueue(1, 16, 1);
        _r.Driver.DriverOk();
        byte gen = _r.Driver.ConfigGeneration;
        _backend.LinkUp = false; // the backend raises LinkChanged; the device tells the driver
        Assert.NotEqual(gen, _r.Driver.ConfigGeneration);
        Assert.Equal(1, _r.Machine.Interrupts.MsiCount(0x42));
        Assert.Equal(0, _r.Driver.ReadDeviceConfig16(6));
    }

    [Fact]
    public void Backend_StartedOnlyAtDriverOk()
    {
        _r.Driver.NegotiateOffered();
        Assert.False(_backend.Started);
        _r.Driver.SetupQueue(0, 16);
        _r.Driver.SetupQueue(1, 16);
        _r.Driver.DriverOk();
        Assert.True(_backend.Started);
    }

    private (DriverQueue Rx, DriverQueue Tx) Start(ulong mask = ulong.MaxValue)
    {
        _r.Driver.NegotiateOffered(mask);
        var rx = _r.Driver.SetupQueue(0, 16);
        var tx = _r.Driver.SetupQueue(1, 16);
        _r.Driver.DriverOk();
        return (rx, tx);
    }

    private ulong Put(byte[] data)
    {
        ulong a = _r.Machine.Allocator.Allocate((ulong)data.Length);
        _r.Machine.Memory.Write(a, data);
        return a;
    }

    private static byte[] Frame(int length, int seed)
    {
        var f = new byte[length];
        new Random(seed).NextBytes(f);
        f[0] = 0x52; // unicast destination
        return f;
    }
}
