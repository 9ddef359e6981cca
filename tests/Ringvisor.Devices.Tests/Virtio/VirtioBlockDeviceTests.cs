using System.Buffers.Binary;
using Ringvisor.Devices.Tests.Virtio.Driver;
using Ringvisor.Devices.Virtio;
using Ringvisor.Devices.Virtio.Block;

namespace Ringvisor.Devices.Tests.Virtio;

public sealed class VirtioBlockDeviceTests
{
    private const uint In = VirtioBlockDevice.TypeIn, Out = VirtioBlockDevice.TypeOut;

    [Fact]
    public void Config_Capacity_IsImageSizeInSectors()
    {
        using var r = BlockRig.Create(imageBytes: 3 << 20);
        Assert.Equal((ulong)(3 << 20) / 512, r.Driver.ReadDeviceConfig64(0));
        Assert.Equal(512u, r.Driver.ReadDeviceConfig32(0x14));
        Assert.Equal(VirtioBlockDevice.QueueSize - 2u, r.Driver.ReadDeviceConfig32(0x0C));
    }

    [Fact]
    public void WriteThenRead_RoundTripsAndReachesTheFile()
    {
        var r = BlockRig.Create();
        var data = BlockRig.Pattern(4096, 1);
        Assert.Equal(VirtioBlockDevice.StatusOk, r.Request(Out, 8, data, 0, out _));
        Assert.Equal(VirtioBlockDevice.StatusOk, r.Request(In, 8, null, 4096, out var back));
        Assert.Equal(data, back);
        Assert.Equal(4096u + 1, r.LastUsedLength);
        Assert.Equal(4096, r.Device.BytesRead);
        Assert.Equal(4096, r.Device.BytesWritten);

        // The image is flock()ed while the device has it (and .NET readers honour that), so look after closing.
        r.Transport.Dispose();
        r.Device.Dispose();
        var file = File.ReadAllBytes(r.ImagePath);
        r.Dispose();
        Assert.Equal(data, file.AsSpan(8 * 512, 4096).ToArray());
    }

    [Fact]
    public void Read_ThroughIndirectDescriptors_Works()
    {
        using var r = BlockRig.Create();
        Assert.NotEqual(0UL, r.Transport.DriverFeatures & VirtioFeatures.Bit(VirtioFeatures.IndirectDescriptors));
        var data = BlockRig.Pattern(1024, 2);
        Assert.Equal(VirtioBlockDevice.StatusOk, r.Request(Out, 0, data, 0, out _, indirect: true));
        Assert.Equal(VirtioBlockDevice.StatusOk, r.Request(In, 0, null, 1024, out var back, indirect: true));
        Assert.Equal(data, back);
    }

    [Fact]
    public void Flush_ReturnsOkAndCountsFsync()
    {
        using var r = BlockRig.Create();
        r.Request(Out, 0, BlockRig.Pattern(512, 3), 0, out _);
        Assert.Equal(VirtioBlockDevice.StatusOk, r.Request(VirtioBlockDevice.TypeFlush, 0, null, 0, out _));
        Assert.Equal(1, r.Device.Flushes);
    }

    [Fact]
    public void GetId_ReturnsSerialPaddedWithZeros()
    {
        using var r = BlockRig.Create(serial: "RV-SERIAL-1");
        Assert.Equal(VirtioBlockDevice.StatusOk, r.Request(VirtioBlockDevice.TypeGetId, 0, null, 20, out var id));
        Assert.Equal("RV-SERIAL-1", System.Text.Encoding.ASCII.GetString(id).TrimEnd('\0'));
    }

    [Theory]
    [InlineData(VirtioBlockDevice.TypeDiscard, 0u)]
    [InlineData(VirtioBlockDevice.TypeWriteZeroes, 0u)]
    [InlineData(VirtioBlockDevice.TypeWriteZeroes, 1u)]
    public void DiscardOrWriteZeroes_RangeReadsBackAsZeros(uint type, uint flags)
    {
        using var r = BlockRig.Create();
        r.Request(Out, 0, Enumerable.Repeat((byte)0xAB, 16384).ToArray(), 0, out _);
        var seg = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(seg, 8);
        BinaryPrimitives.WriteUInt32LittleEndian(seg.AsSpan(8), 16);
        BinaryPrimitives.WriteUInt32LittleEndian(seg.AsSpan(12), flags);
        Assert.Equal(VirtioBlockDevice.StatusOk, r.Request(type, 0, seg, 0, out _));
        r.Request(In, 0, null, 16384, out var back);
        Assert.All(back.AsSpan(0, 4096).ToArray(), b => Assert.Equal(0xAB, b));
        Assert.All(back.AsSpan(4096, 8192).ToArray(), b => Assert.Equal(0, b));
        Assert.All(back.AsSpan(12288, 4096).ToArray(), b => Assert.Equal(0xAB, b));
    }

    [Fact]
    public void Discard_WithUnmapFlag_IsUnsupported()
    {
        using var r = BlockRig.Create();
        var seg = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(seg.AsSpan(8), 8);
        BinaryPrimitives.WriteUInt32LittleEndian(seg.AsSpan(12), 1);
        Assert.Equal(VirtioBlockDevice.StatusUnsupported, r.Request(VirtioBlockDevice.TypeDiscard, 0, seg, 0, out _));
    }

    [Fact]
    public void ReadOnly_OffersRoAndFailsWrites()
    {
        using var r = BlockRig.Create(readOnly: true);
        Assert.NotEqual(0UL, r.Transport.DriverFeatures & VirtioFeatures.Bit(VirtioBlockDevice.FeatureReadOnly));
        Assert.Equal(0UL, r.Transport.DriverFeatures & VirtioFeatures.Bit(VirtioBlockDevice.FeatureDiscard));
        Assert.Equal(VirtioBlockDevice.StatusIoError, r.Request(Out, 0, BlockRig.Pattern(512, 4), 0, out _));
        Assert.Equal(VirtioBlockDevice.StatusOk, r.Request(In, 0, null, 512, out var back));
        Assert.All(back, b => Assert.Equal(0, b));
        Assert.Equal(1, r.Device.Statistics.RequestErrors);
    }

    [Fact]
    public void Read_PastCapacity_FailsWithIoErrorAndCounts()
    {
        using var r = BlockRig.Create(imageBytes: 1 << 20);
        Assert.Equal(VirtioBlockDevice.StatusIoError, r.Request(In, 2047, null, 1024, out _));
        Assert.Equal(VirtioBlockDevice.StatusIoError, r.Request(In, ulong.MaxValue, null, 512, out _));
        Assert.Equal(2, r.Device.Statistics.RequestErrors);
        Assert.Equal(0, r.Device.Statistics.RingErrors);
    }

    [Fact]
    public void Read_LengthNotSectorMultiple_FailsWithIoError()
    {
        using var r = BlockRig.Create();
        Assert.Equal(VirtioBlockDevice.StatusIoError, r.Request(In, 0, null, 100, out _));
    }

    [Fact]
    public void UnknownType_FailsWithUnsupported()
    {
        using var r = BlockRig.Create();
        Assert.Equal(VirtioBlockDevice.StatusUnsupported, r.Request(99, 0, null, 0, out _));
    }

    [Fact]
    public void Request_WithoutStatusByte_SetsNeedsReset()
    {
        using var r = BlockRig.Create();
        ulong hdr = r.Machine.Allocator.Allocate(16);
        r.Queue.Add([new DriverBuffer(hdr, 16, false)]);
        Assert.NotEqual(0, (int)(r.Driver.DeviceStatus & VirtioDeviceStatus.DeviceNeedsReset));
        Assert.Equal(1, r.Device.Statistics.NeedsResetEvents);
    }

    [Fact]
    public void WorkerThread_RequestsCompleteAsynchronously()
    {
        using var r = BlockRig.Create(worker: true);
        var data = BlockRig.Pattern(8192, 5);
        Assert.Equal(VirtioBlockDevice.StatusOk, r.Request(Out, 100, data, 0, out _));
        Assert.Equal(VirtioBlockDevice.StatusOk, r.Request(In, 100, null, 8192, out var back));
        Assert.Equal(data, back);
    }

    [Fact]
    public void Completion_WithMsix_SendsQueueVector()
    {
        using var r = BlockRig.Create(msix: true);
        r.Request(In, 0, null, 512, out _);
        Assert.Equal(1, r.Machine.Interrupts.MsiCount(0x40));
    }

    [Fact]
    public void Completion_WithoutMsix_AssertsIntxUntilIsrRead()
    {
        using var r = BlockRig.Create();
        int gsi = r.Transport.Context!.IntxGsi;
        r.Request(In, 0, null, 512, out _);
        Assert.True(r.Machine.Interrupts.Level(gsi));
        Assert.Equal(1, r.Driver.ReadIsr());
        Assert.False(r.Machine.Interrupts.Level(gsi));
        Assert.Equal(0, r.Driver.ReadIsr());
    }

    [Fact]
    public void Factory_Block_OnBusAndDisposeReleasesImageLock()
    {
        string path = Path.Combine(Path.GetTempPath(), $"rv-fac-{Guid.NewGuid():N}.img");
        File.WriteAllBytes(path, new byte[65536]);
        try
        {
            using var m = new TestMachine();
            var t = VirtioPci.Block(m.Memory, path);
            var a = m.Pci.AddDevice(t);
            Assert.Equal(0x1042, m.ConfigRead16(a, 2));
            Assert.Throws<IOException>(() => VirtioPci.Block(m.Memory, path));
            t.Dispose();
            VirtioPci.Block(m.Memory, path).Dispose();
        }
        finally
        {
            File.Delete(path);
        }
    }
}
