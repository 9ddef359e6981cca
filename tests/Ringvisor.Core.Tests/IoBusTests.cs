using Ringvisor.Core.Bus;

namespace Ringvisor.Core.Tests;

public sealed class IoBusTests
{
    private sealed class Recorder : IBusDevice
    {
        public List<(ulong Offset, byte[] Data)> Writes { get; } = [];

        public List<(ulong Offset, int Length)> Reads { get; } = [];

        public void Read(ulong offset, Span<byte> data)
        {
            Reads.Add((offset, data.Length));
            data.Fill(0x5A);
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data) => Writes.Add((offset, data.ToArray()));
    }

    [Fact]
    public void Write_ClaimedAddress_DeviceSeesOffset()
    {
        var bus = new IoBus("pio", 0x10000);
        var dev = new Recorder();
        bus.Register(0x3F8, 8, dev, "uart");
        Assert.True(bus.Write(0x3FB, [0x80]));
        Assert.Equal(3UL, dev.Writes[0].Offset);
        Assert.Equal(new byte[] { 0x80 }, dev.Writes[0].Data);
    }

    [Theory]
    [InlineData(0x3F0UL, 0x10UL)] // covers the whole window
    [InlineData(0x3FFUL, 1UL)] // last byte
    [InlineData(0x3F0UL, 9UL)] // first byte
    [InlineData(0x3F8UL, 8UL)] // identical
    public void Register_Overlapping_Throws(ulong start, ulong len)
    {
        var bus = new IoBus("pio", 0x10000);
        bus.Register(0x3F8, 8, new Recorder(), "uart");
        var e = Assert.Throws<ArgumentException>(() => bus.Register(start, len, new Recorder(), "other"));
        Assert.Contains("uart", e.Message);
    }

    [Fact]
    public void Register_Adjacent_Allowed()
    {
        var bus = new IoBus("pio", 0x10000);
        bus.Register(0x3F8, 8, new Recorder(), "a");
        bus.Register(0x3F0, 8, new Recorder(), "b");
        bus.Register(0x400, 8, new Recorder(), "c");
        Assert.Equal(3, bus.Ranges.Count);
    }

    [Theory]
    [InlineData(0UL, 0UL)]
    [InlineData(0xFFFFUL, 2UL)]
    [InlineData(0x10000UL, 1UL)]
    public void Register_OutsideBusOrEmpty_Throws(ulong start, ulong len) =>
        Assert.Throws<ArgumentException>(() => new IoBus("pio", 0x10000).Register(start, len, new Recorder(), "x"));

    [Fact]
    public void Read_Unclaimed_ReturnsAllOnesAndCounts()
    {
        var bus = new IoBus("pio", 0x10000);
        Span<byte> d = stackalloc byte[4];
        Assert.False(bus.Read(0x80, d));
        Assert.Equal(0xFFFFFFFFu, BitConverter.ToUInt32(d));
        Assert.Equal(1, bus.UnclaimedReads);
    }

    [Fact]
    public void Write_Unclaimed_IsDroppedAndCounted()
    {
        var bus = new IoBus("mmio", ulong.MaxValue);
        Assert.False(bus.Write(0xFEB0_0000, [1, 2, 3, 4]));
        Assert.Equal(1, bus.UnclaimedWrites);
    }

    [Fact]
    public void Access_StraddlingWindowEnd_IsUnclaimed()
    {
        var bus = new IoBus("pio", 0x10000);
        var dev = new Recorder();
        bus.Register(0x70, 2, dev, "cmos");
        Assert.False(bus.Write(0x71, [1, 2]));
        Assert.Empty(dev.Writes);
    }

    [Fact]
    public void Unregister_ThenAccess_Unclaimed()
    {
        var bus = new IoBus("mmio", ulong.MaxValue);
        var dev = new Recorder();
        bus.Register(0xC000_0000, 0x1000, dev, "bar");
        Assert.True(bus.Unregister(0xC000_0000, dev));
        Assert.False(bus.Read(0xC000_0000, new byte[4]));
        Assert.False(bus.Unregister(0xC000_0000, dev));
    }

    [Fact]
    public void Find_ManyWindows_BinarySearchFindsEach()
    {
        var bus = new IoBus("pio", 0x10000);
        var devs = new Recorder[50];
        for (int i = 0; i < devs.Length; i++)
        {
            devs[i] = new Recorder();
            bus.Register((ulong)(i * 0x20 + 0x100), 0x10, devs[i], $"d{i}");
        }

        for (int i = 0; i < devs.Length; i++)
        {
            Assert.Same(devs[i], bus.Find((ulong)(i * 0x20 + 0x10F), 1)!.Device);
            Assert.Null(bus.Find((ulong)(i * 0x20 + 0x110), 1));
        }
    }
}
