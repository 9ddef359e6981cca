using Ringvisor.Devices.Pci;
using Ringvisor.Devices.Tests.Virtio.Driver;
using Ringvisor.Devices.Virtio;
using Ringvisor.Devices.Virtio.Rng;

namespace Ringvisor.Devices.Tests.Virtio;

public sealed class VirtioPciTransportTests : IDisposable
{
    private static readonly ulong s_version1 = VirtioFeatures.Bit(VirtioFeatures.Version1);
    private readonly DeviceRig _r = new(new VirtioRngDevice());

    public void Dispose() => _r.Dispose();

    [Fact]
    public void PciIdentity_IsModernVirtioEntropyDevice()
    {
        var a = _r.Driver.Address;
        Assert.Equal(0x1AF4, _r.Machine.ConfigRead16(a, 0));
        Assert.Equal(0x1040 + 4, _r.Machine.ConfigRead16(a, 2));
        Assert.Equal(1, _r.Machine.ConfigRead8(a, PciConfigSpace.RevisionOffset));
    }

    [Fact]
    public void Capabilities_AllFourStructuresFoundInTheVirtioBar()
    {
        ulong bar = _r.Driver.BarAddress(VirtioPciTransport.VirtioBarIndex);
        Assert.Equal(bar + VirtioPciTransport.CommonConfigOffset, _r.Driver.CommonBase);
        Assert.Equal(bar + VirtioPciTransport.NotifyOffset, _r.Driver.NotifyBase);
        Assert.Equal(bar + VirtioPciTransport.IsrOffset, _r.Driver.IsrAddress);
        Assert.Equal(bar + VirtioPciTransport.DeviceConfigOffset, _r.Driver.DeviceConfigBase);
        Assert.Equal(VirtioPciTransport.NotifyOffMultiplier, _r.Driver.NotifyMultiplier);
        Assert.NotEqual(0UL, _r.Driver.MsixTableAddress);
    }

    [Fact]
    public void Features_OfferedIncludeVersion1IndirectAndEventIndex()
    {
        ulong f = _r.Driver.ReadDeviceFeatures();
        Assert.Equal(VirtioFeatures.TransportFeatures, f & VirtioFeatures.TransportFeatures);
    }

    [Fact]
    public void Negotiate_FeatureNotOffered_FeaturesOkRefusedAndCounted()
    {
        Assert.False(_r.Driver.Negotiate(s_version1 | (1UL << 40)));
        Assert.Equal(1, _r.Device.Statistics.FeatureRejections);
    }

    [Fact]
    public void Negotiate_WithoutVersion1_Refused()
    {
        Assert.False(_r.Driver.Negotiate(VirtioFeatures.Bit(VirtioFeatures.IndirectDescriptors)));
    }

    [Fact]
    public void Negotiate_Subset_AcceptedAndDriverFeaturesFixedAfterwards()
    {
        Assert.True(_r.Driver.Negotiate(s_version1));
        _r.Driver.Write32(_r.Driver.CommonBase + TestVirtioDriver.CommonDriverFeatureSelect, 0);
        _r.Driver.Write32(_r.Driver.CommonBase + TestVirtioDriver.CommonDriverFeature, 0xFFFF_FFFF);
        Assert.Equal(s_version1, _r.Transport.DriverFeatures);
    }

    [Fact]
    public void DriverOk_WithoutFeaturesOk_IsNotLatched()
    {
        _r.Driver.Status = (byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.DriverOk);
        Assert.Equal(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver, _r.Driver.DeviceStatus);
    }

    [Fact]
    public void Status_WriteZero_ResetsStatusFeaturesAndQueues()
    {
        _r.Driver.NegotiateOffered();
        _r.Driver.SetupQueue(0, 8);
        _r.Driver.DriverOk();
        Assert.True(_r.Transport.Queues[0].Enabled);
        _r.Driver.Status = 0;
        Assert.Equal(0, _r.Driver.Status);
        Assert.False(_r.Transport.Queues[0].Enabled);
        Assert.Equal(0UL, _r.Transport.DriverFeatures);
        _r.Driver.Write16(_r.Driver.CommonBase + TestVirtioDriver.CommonQueueSelect, 0);
        Assert.Equal(VirtioRngDevice.QueueSize, _r.Driver.Read16(_r.Driver.CommonBase + TestVirtioDriver.CommonQueueSize));
    }

    [Fact]
    public void NumQueues_AndNonexistentQueue_ReadSizeZero()
    {
        Assert.Equal(1, _r.Driver.Read16(_r.Driver.CommonBase + TestVirtioDriver.CommonNumQueues));
        _r.Driver.Write16(_r.Driver.CommonBase + TestVirtioDriver.CommonQueueSelect, 5);
        Assert.Equal(0, _r.Driver.Read16(_r.Driver.CommonBase + TestVirtioDriver.CommonQueueSize));
    }

    [Theory]
    [InlineData((ushort)0)]
    [InlineData((ushort)3)]
    [InlineData((ushort)24)]
    [InlineData((ushort)128)]
    public void QueueEnable_BadSize_SetsNeedsResetAndCounts(ushort size)
    {
        _r.Driver.NegotiateOffered();
        _r.Driver.SetupQueue(0, size);
        _r.Driver.DriverOk();
        Assert.True((_r.Driver.DeviceStatus & VirtioDeviceStatus.DeviceNeedsReset) != 0);
        Assert.Equal(VirtqueueError.BadQueueSize, _r.Transport.Queues[0].Error);
        Assert.Equal(1, _r.Device.Statistics.NeedsResetEvents);
    }

    [Fact]
    public void QueueEnable_RingOutsideRam_SetsNeedsReset()
    {
        _r.Driver.NegotiateOffered();
        var c = _r.Driver.CommonBase;
        _r.Driver.Write16(c + TestVirtioDriver.CommonQueueSelect, 0);
        _r.Driver.Write16(c + TestVirtioDriver.CommonQueueSize, 8);
        _r.Driver.Write64(c + TestVirtioDriver.CommonQueueDesc, 0xFFFF_FFFF_0000);
        _r.Driver.Write16(c + TestVirtioDriver.CommonQueueEnable, 1);
        Assert.Equal(VirtqueueError.BadRingAddress, _r.Transport.Queues[0].Error);
        Assert.True((_r.Driver.DeviceStatus & VirtioDeviceStatus.DeviceNeedsReset) != 0);
    }

    [Fact]
    public void NeedsReset_AfterResetAndReinit_DeviceWorksAgain()
    {
        _r.Driver.NegotiateOffered();
        _r.Driver.SetupQueue(0, 3);
        _r.Driver.DriverOk();
        Assert.True((_r.Driver.DeviceStatus & VirtioDeviceStatus.DeviceNeedsReset) != 0);
        _r.Driver.NegotiateOffered();
        var q = _r.Driver.SetupQueue(0, 8);
        _r.Driver.DriverOk();
        ulong buf = _r.Machine.Allocator.Allocate(32);
        q.Add([new DriverBuffer(buf, 32, true)]);
        Assert.Equal(32u, q.WaitUsed().Length);
        Assert.Equal(0, (int)(_r.Driver.DeviceStatus & VirtioDeviceStatus.DeviceNeedsReset));
    }

    [Fact]
    public void QueueMsixVector_BeyondTable_ReadsBackNoVector()
    {
        _r.Driver.NegotiateOffered();
        var c = _r.Driver.CommonBase;
        _r.Driver.Write16(c + TestVirtioDriver.CommonQueueSelect, 0);
        _r.Driver.Write16(c + TestVirtioDriver.CommonQueueMsixVector, 2);
        Assert.Equal(VirtioPciTransport.NoVector, _r.Driver.Read16(c + TestVirtioDriver.CommonQueueMsixVector));
        _r.Driver.Write16(c + TestVirtioDriver.CommonQueueMsixVector, 1);
        Assert.Equal(1, _r.Driver.Read16(c + TestVirtioDriver.CommonQueueMsixVector));
        Assert.Equal(VirtioPciTransport.NoVector, _r.Driver.SetConfigVector(7));
        Assert.Equal(0, _r.Driver.SetConfigVector(0));
    }

    [Fact]
    public void GetNotifyAddress_MatchesDriversComputation()
    {
        _r.Driver.NegotiateOffered();
        var q = _r.Driver.SetupQueue(0, 8);
        Assert.Equal(q.NotifyAddress, _r.Transport.GetNotifyAddress(0));
        Assert.Null(_r.Transport.GetNotifyAddress(1));
    }

    [Fact]
    public void NotifyQueue_FromOutsideTheBus_ProcessesLikeAnMmioKick()
    {
        _r.Driver.NegotiateOffered();
        var q = _r.Driver.SetupQueue(0, 8);
        _r.Driver.DriverOk();
        ulong buf = _r.Machine.Allocator.Allocate(16);
        q.Add([new DriverBuffer(buf, 16, true)], kick: false);
        Assert.False(q.TryTakeUsed(out _, out _));
        ((IVirtioQueueNotifier)_r.Transport).NotifyQueue(0);
        Assert.True(q.TryTakeUsed(out _, out uint len));
        Assert.Equal(16u, len);
    }

    [Fact]
    public void EventIndex_UsedEventSuppressesInterruptsUntilPassed()
    {
        _r.Driver.NegotiateOffered();
        _r.Driver.EnableMsix(2);
        var q = _r.Driver.SetupQueue(0, 8, msixVector: 0, eventIndex: true);
        _r.Driver.DriverOk();
        q.SetUsedEvent(2); // interrupt when the third completion (used.idx 2 -> 3) is published
        for (int i = 0; i < 3; i++)
        {
            ulong buf = _r.Machine.Allocator.Allocate(8);
            q.Add([new DriverBuffer(buf, 8, true)]);
            Assert.True(q.TryTakeUsed(out _, out _));
            Assert.Equal(i == 2 ? 1 : 0, _r.Machine.Interrupts.MsiCount(0x40));
        }

        Assert.Equal(3, q.AvailEvent);
    }

    [Fact]
    public void NoInterruptFlag_WithoutEventIndex_SuppressesInterrupts()
    {
        _r.Driver.NegotiateOffered(~VirtioFeatures.Bit(VirtioFeatures.EventIndex));
        int gsi = _r.Transport.Context!.IntxGsi;
        var q = _r.Driver.SetupQueue(0, 8);
        _r.Driver.DriverOk();
        q.SetNoInterrupt(true);
        ulong buf = _r.Machine.Allocator.Allocate(8);
        q.Add([new DriverBuffer(buf, 8, true)]);
        Assert.True(q.TryTakeUsed(out _, out _));
        Assert.False(_r.Machine.Interrupts.Level(gsi));
        q.SetNoInterrupt(false);
        q.Add([new DriverBuffer(buf, 8, true)]);
        Assert.True(_r.Machine.Interrupts.Level(gsi));
    }

    [Fact]
    public void Rng_FillsWritableBuffersWithRandomBytes()
    {
        _r.Driver.NegotiateOffered();
        var q = _r.Driver.SetupQueue(0, 8);
        _r.Driver.DriverOk();
        ulong a = _r.Machine.Allocator.Allocate(64);
        ulong b = _r.Machine.Allocator.Allocate(64);
        q.Add([new DriverBuffer(a, 64, true), new DriverBuffer(b, 64, true)]);
        Assert.Equal(128u, q.WaitUsed().Length);
        var bytes = new byte[64];
        _r.Machine.Memory.Read(b, bytes);
        Assert.Contains(bytes, x => x != 0);
        Assert.Equal(128, ((VirtioRngDevice)_r.Device).BytesProvided);
    }

    [Fact]
    public void PciCfgCapability_WindowReadsAndWritesTheVirtioBar()
    {
        var a = _r.Driver.Address;
        int cap = _r.Machine.ConfigRead8(a, PciConfigSpace.CapabilitiesPointerOffset);
        while (cap != 0 && !(_r.Machine.ConfigRead8(a, cap) == 0x09 && _r.Machine.ConfigRead8(a, cap + 3) == 5))
        {
            cap = _r.Machine.ConfigRead8(a, cap + 1);
        }

        Assert.NotEqual(0, cap);
        Assert.Equal(20, _r.Machine.ConfigRead8(a, cap + 2));

        // Read num_queues (2 bytes at common + 0x12) through the window.
        _r.Machine.ConfigWrite32(a, cap + 4, VirtioPciTransport.VirtioBarIndex);
        _r.Machine.ConfigWrite32(a, cap + 8, (uint)VirtioPciTransport.CommonConfigOffset + TestVirtioDriver.CommonNumQueues);
        _r.Machine.ConfigWrite32(a, cap + 12, 2);
        Assert.Equal(1u, _r.Machine.ConfigRead32(a, cap + 16) & 0xFFFF);

        // Write device status (1 byte at common + 0x14) through the window.
        _r.Machine.ConfigWrite32(a, cap + 8, (uint)VirtioPciTransport.CommonConfigOffset + TestVirtioDriver.CommonStatus);
        _r.Machine.ConfigWrite32(a, cap + 12, 1);
        _r.Machine.ConfigWrite32(a, cap + 16, (uint)VirtioDeviceStatus.Acknowledge);
        Assert.Equal(VirtioDeviceStatus.Acknowledge, _r.Driver.DeviceStatus);
    }

    [Fact]
    public void Rng_ReadableBufferInRequest_CountedAsRequestError()
    {
        _r.Driver.NegotiateOffered();
        var q = _r.Driver.SetupQueue(0, 8);
        _r.Driver.DriverOk();
        ulong a = _r.Machine.Allocator.Allocate(16);
        ulong b = _r.Machine.Allocator.Allocate(16);
        q.Add([new DriverBuffer(a, 16, false), new DriverBuffer(b, 16, true)]);
        Assert.Equal(16u, q.WaitUsed().Length);
        Assert.Equal(1, _r.Device.Statistics.RequestErrors);
    }
}
