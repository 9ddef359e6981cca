// Two virtio-net devices, each on its own test machine with the C# test driver, joined by a real switch over a
// UNIX socket: what two VMs on `ringvisor switch NAME` do, minus the guest kernels.
using System.Buffers.Binary;
using Ringvisor.Devices.Tests.Virtio.Driver;
using Ringvisor.Devices.Virtio.Net;
using Ringvisor.Net.Backends;
using Ringvisor.Net.Ethernet;
using Ringvisor.Net.Switching;

namespace Ringvisor.Net.Tests.Switching;

public sealed class VirtioNetOverSwitchTests : IDisposable
{
    private const int Hdr = VirtioNetDevice.HeaderSize;
    private readonly string _dir = Directory.CreateTempSubdirectory("rv-vnet-").FullName;
    private readonly VirtualSwitch _vs = new("lan");
    private readonly Nic _a;
    private readonly Nic _b;

    public VirtioNetOverSwitchTests()
    {
        string path = Path.Combine(_dir, "lan.sock");
        _vs.Listen(path);
        _a = new Nic("vmA/net0", SwitchPortBackend.Connect(path));
        _b = new Nic("vmB/net0", SwitchPortBackend.Connect(path));
        VirtualSwitchTests.WaitFor(() => _vs.ClientCount == 2);
    }

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
        _vs.Dispose();
        Directory.Delete(_dir, true);
    }

    [Fact]
    public void Broadcast_FromA_ArrivesAtB()
    {
        var frame = FrameBuilder.Build(MacAddress.Broadcast, MacAddress.FromSpan(_a.Device.Mac), 0x0806, 46, 0x5A);
        _a.Transmit(frame);
        Assert.Equal(frame, _b.ReceiveOne());
    }

    [Fact]
    public void UnicastExchange_LearnedAndDeliveredBothWays()
    {
        var macA = MacAddress.FromSpan(_a.Device.Mac);
        var macB = MacAddress.FromSpan(_b.Device.Mac);
        _a.Transmit(FrameBuilder.Build(MacAddress.Broadcast, macA));
        _b.ReceiveOne();
        for (int i = 0; i < 20; i++)
        {
            var toB = FrameBuilder.Build(macB, macA, 0x0800, 1000 + i, (byte)i);
            _a.Transmit(toB);
            Assert.Equal(toB, _b.ReceiveOne());
            var toA = FrameBuilder.Build(macA, macB, 0x0800, 500 + i, (byte)(100 + i));
            _b.Transmit(toA);
            Assert.Equal(toA, _a.ReceiveOne());
        }

        Assert.Equal(21, _a.Device.TxFrames);
        Assert.Equal(20, _a.Device.RxFrames);
        Assert.Equal(_vs.Switch.Ports.Count, _vs.Switch.MacTableSnapshot.Values.Distinct().Count());
    }

    [Fact]
    public void NicDisposed_SwitchFreesItsPort()
    {
        _b.Dispose();
        VirtualSwitchTests.WaitFor(() => _vs.Switch.Ports.Count == 1);
    }

    private sealed class Nic : IDisposable
    {
        private readonly DeviceRig _rig;
        private readonly DriverQueue _rx;
        private readonly DriverQueue _tx;
        private readonly object _gate = new();
        private bool _disposed;

        public Nic(string name, SwitchPortBackend backend)
        {
            Device = new VirtioNetDevice(name, backend);
            _rig = new DeviceRig(Device, worker: true);
            _rig.Driver.NegotiateOffered();
            _rx = _rig.Driver.SetupQueue(VirtioNetDevice.ReceiveQueue, 64);
            _tx = _rig.Driver.SetupQueue(VirtioNetDevice.TransmitQueue, 64);
            for (int i = 0; i < 32; i++)
            {
                ulong b = _rig.Machine.Allocator.Allocate(2048);
                _rx.Add([new DriverBuffer(b, 2048, true)], kick: false);
            }

            _rig.Driver.DriverOk();
        }

        public VirtioNetDevice Device { get; }

        public void Transmit(byte[] frame)
        {
            ulong a = _rig.Machine.Allocator.Allocate((ulong)(Hdr + frame.Length));
            _rig.Machine.Memory.Write(a + Hdr, frame);
            _tx.Add([new DriverBuffer(a, (uint)(Hdr + frame.Length), false)]);
            _tx.WaitUsed();
        }

        /// <summary>Takes one received frame (single-buffer: our buffers are larger than any test frame).</summary>
        public byte[] ReceiveOne()
        {
            var (head, len) = _rx.WaitUsed();
            ulong addr = _rig.Machine.Memory.TryRead(_rx.DescriptorTable + (16UL * head), out ulong a) ? a : 0;
            var data = new byte[len];
            _rig.Machine.Memory.Read(addr, data);
            Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(10)));

            // Give the buffer back, as a driver refills its ring.
            ulong b = _rig.Machine.Allocator.Allocate(2048);
            _rx.Add([new DriverBuffer(b, 2048, true)]);
            return data[Hdr..];
        }

        public void Dispose()
        {
            lock (_gate)
            {
                if (_disposed)
                {
                    return;
                }

                _disposed = true;
            }

            _rig.Dispose();
        }
    }
}
