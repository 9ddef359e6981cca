// A virtio 1.2 PCI driver written for tests, doing what Linux's virtio_pci_modern does: find the vendor
// capabilities through configuration space, negotiate features (§3.1.1), set up split queues, and talk to the
// device only through MMIO on the machine's bus, as a guest would.
using System.Buffers.Binary;
using Ringvisor.Devices.Pci;
using Ringvisor.Devices.Virtio;

namespace Ringvisor.Devices.Tests.Virtio.Driver;

internal sealed class TestVirtioDriver
{
    public const int CommonDeviceFeatureSelect = 0x00, CommonDeviceFeature = 0x04, CommonDriverFeatureSelect = 0x08, CommonDriverFeature = 0x0C;
    public const int CommonConfigMsixVector = 0x10, CommonNumQueues = 0x12, CommonStatus = 0x14, CommonConfigGeneration = 0x15;
    public const int CommonQueueSelect = 0x16, CommonQueueSize = 0x18, CommonQueueMsixVector = 0x1A, CommonQueueEnable = 0x1C;
    public const int CommonQueueNotifyOff = 0x1E, CommonQueueDesc = 0x20, CommonQueueDriver = 0x28, CommonQueueDevice = 0x30;

    private readonly TestMachine _m;

    public TestVirtioDriver(TestMachine machine, PciAddress address)
    {
        _m = machine;
        Address = address;

        // Walk the capability list as Linux's virtio_pci_find_capability does.
        int cap = machine.ConfigRead8(address, PciConfigSpace.CapabilitiesPointerOffset);
        int guard = 0;
        while (cap != 0 && guard++ < 48)
        {
            byte id = machine.ConfigRead8(address, cap);
            if (id == 0x09)
            {
                byte type = machine.ConfigRead8(address, cap + 3);
                byte bar = machine.ConfigRead8(address, cap + 4);
                uint offset = machine.ConfigRead32(address, cap + 8);
                ulong barAddress = BarAddress(bar);
                switch (type)
                {
                    case 1: CommonBase = barAddress + offset; break;
                    case 2:
                        NotifyBase = barAddress + offset;
                        NotifyMultiplier = machine.ConfigRead32(address, cap + 16);
                        break;
                    case 3: IsrAddress = barAddress + offset; break;
                    case 4: DeviceConfigBase = barAddress + offset; break;
                }
            }
            else if (id == MsixCapability.CapabilityId)
            {
                MsixCapabilityOffset = cap;
                uint table = machine.ConfigRead32(address, cap + 4);
                MsixTableAddress = BarAddress((int)(table & 7)) + (table & ~7u);
            }

            cap = machine.ConfigRead8(address, cap + 1);
        }

        // Bus mastering on, as pci_set_master does before the driver uses DMA.
        ushort cmd = machine.ConfigRead16(address, PciConfigSpace.CommandOffset);
        machine.ConfigWrite16(address, PciConfigSpace.CommandOffset, (ushort)(cmd | PciConfigSpace.CommandBusMaster));
    }

    public PciAddress Address { get; }

    public ulong CommonBase { get; }

    public ulong NotifyBase { get; }

    public uint NotifyMultiplier { get; }

    public ulong IsrAddress { get; }

    public ulong DeviceConfigBase { get; }

    public int MsixCapabilityOffset { get; }

    public ulong MsixTableAddress { get; }

    public TestMachine Machine => _m;

    public byte Status
    {
        get => Read8(CommonBase + CommonStatus);
        set => Write8(CommonBase + CommonStatus, value);
    }

    public VirtioDeviceStatus DeviceStatus => (VirtioDeviceStatus)Status;

    public ulong BarAddress(int bar)
    {
        uint low = _m.ConfigRead32(Address, PciConfigSpace.Bar0Offset + (bar * 4));
        if ((low & 1) != 0)
        {
            return low & ~3u;
        }

        ulong a = low & ~0xFu;
        if ((low & 0x6) == 0x4)
        {
            a |= (ulong)_m.ConfigRead32(Address, PciConfigSpace.Bar0Offset + (bar * 4) + 4) << 32;
        }

        return a;
    }

    public ulong ReadDeviceFeatures()
    {
        Write32(CommonBase + CommonDeviceFeatureSelect, 0);
        ulong lo = Read32(CommonBase + CommonDeviceFeature);
        Write32(CommonBase + CommonDeviceFeatureSelect, 1);
        ulong hi = Read32(CommonBase + CommonDeviceFeature);
        return lo | (hi << 32);
    }

    /// <summary>§3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns whether the device kept FEATURES_OK.</summary>
    public bool Negotiate(ulong features)
    {
        Status = 0;
        Status = (byte)VirtioDeviceStatus.Acknowledge;
        Status = (byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver);
        Write32(CommonBase + CommonDriverFeatureSelect, 0);
        Write32(CommonBase + CommonDriverFeature, (uint)features);
        Write32(CommonBase + CommonDriverFeatureSelect, 1);
        Write32(CommonBase + CommonDriverFeature, (uint)(features >> 32));
        Status = (byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk);
        return (DeviceStatus & VirtioDeviceStatus.FeaturesOk) != 0;
    }

    /// <summary>Negotiates everything the device offers that <paramref name="mask"/> allows; asserts it worked.</summary>
    public ulong NegotiateOffered(ulong mask = ulong.MaxValue)
    {
        ulong f = ReadDeviceFeatures() & mask;
        if (!Negotiate(f))
        {
            throw new InvalidOperationException("device refused its own features");
        }

        return f;
    }

    public DriverQueue SetupQueue(int index, ushort? size = null, ushort msixVector = VirtioPciTransport.NoVector, bool eventIndex = false)
    {
        Write16(CommonBase + CommonQueueSelect, (ushort)index);
        ushort max = Read16(CommonBase + CommonQueueSize);
        ushort n = size ?? max;
        var q = new DriverQueue(this, index, n, eventIndex);
        Write16(CommonBase + CommonQueueSize, n);
        Write16(CommonBase + CommonQueueMsixVector, msixVector);
        Write64(CommonBase + CommonQueueDesc, q.DescriptorTable);
        Write64(CommonBase + CommonQueueDriver, q.AvailRing);
        Write64(CommonBase + CommonQueueDevice, q.UsedRing);
        q.NotifyAddress = NotifyBase + ((ulong)Read16(CommonBase + CommonQueueNotifyOff) * NotifyMultiplier);
        Write16(CommonBase + CommonQueueEnable, 1);
        return q;
    }

    public void DriverOk() =>
        Status = (byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk | VirtioDeviceStatus.DriverOk);

    /// <summary>Programs MSI-X vector <paramref name="vector"/> to send data = 0x40 + vector, unmasked, and enables MSI-X.</summary>
    public void EnableMsix(int vectors)
    {
        for (int v = 0; v < vectors; v++)
        {
            ulong e = MsixTableAddress + ((ulong)v * 16);
            Write32(e, 0xFEE0_0000);
            Write32(e + 4, 0);
            Write32(e + 8, (uint)(0x40 + v));
            Write32(e + 12, 0);
        }

        ushort ctl = _m.ConfigRead16(Address, MsixCapabilityOffset + 2);
        _m.ConfigWrite16(Address, MsixCapabilityOffset + 2, (ushort)(ctl | MsixCapability.ControlEnable));
    }

    public ushort SetConfigVector(ushort vector)
    {
        Write16(CommonBase + CommonConfigMsixVector, vector);
        return Read16(CommonBase + CommonConfigMsixVector);
    }

    public byte ReadIsr() => Read8(IsrAddress);

    public byte ReadDeviceConfig8(int offset) => Read8(DeviceConfigBase + (ulong)offset);

    public ushort ReadDeviceConfig16(int offset) => Read16(DeviceConfigBase + (ulong)offset);

    public uint ReadDeviceConfig32(int offset) => Read32(DeviceConfigBase + (ulong)offset);

    public ulong ReadDeviceConfig64(int offset) => Read32(DeviceConfigBase + (ulong)offset) | ((ulong)Read32(DeviceConfigBase + (ulong)offset + 4) << 32);

    public byte ConfigGeneration => Read8(CommonBase + CommonConfigGeneration);

    public byte Read8(ulong a)
    {
        Span<byte> b = stackalloc byte[1];
        _m.Mmio.Read(a, b);
        return b[0];
    }

    public ushort Read16(ulong a)
    {
        Span<byte> b = stackalloc byte[2];
        _m.Mmio.Read(a, b);
        return BinaryPrimitives.ReadUInt16LittleEndian(b);
    }

    public uint Read32(ulong a)
    {
        Span<byte> b = stackalloc byte[4];
        _m.Mmio.Read(a, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public void Write8(ulong a, byte v) => _m.Mmio.Write(a, [v]);

    public void Write16(ulong a, ushort v)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, v);
        _m.Mmio.Write(a, b);
    }

    public void Write32(ulong a, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        _m.Mmio.Write(a, b);
    }

    /// <summary>Two 32-bit halves, low first, as Linux's vp_iowrite64_twopart.</summary>
    public void Write64(ulong a, ulong v)
    {
        Write32(a, (uint)v);
        Write32(a + 4, (uint)(v >> 32));
    }
}
