using Ringvisor.Core.Memory;

namespace Ringvisor.Core.Tests;

public sealed class GuestMemoryTests
{
    [Fact]
    public void Create_SmallSize_OneRegionAtZero()
    {
        using var mem = GuestMemory.Create(16 << 20);
        var r = Assert.Single(mem.Regions);
        Assert.Equal(0UL, r.GuestPhysicalAddress);
        Assert.Equal(16UL << 20, r.Size);
    }

    [Fact]
    public void Create_LargerThanHole_SplitsAroundPciHole()
    {
        using var mem = GuestMemory.Create(4UL << 30);
        Assert.Equal(2, mem.Regions.Count);
        Assert.Equal(MemoryLayout.PciHoleStart, mem.Regions[0].Size);
        Assert.Equal(MemoryLayout.HighMemoryStart, mem.Regions[1].GuestPhysicalAddress);
        Assert.Equal((4UL << 30) - MemoryLayout.PciHoleStart, mem.Regions[1].Size);
        Assert.False(mem.IsRam(MemoryLayout.PciHoleStart));
        Assert.True(mem.IsRam(MemoryLayout.HighMemoryStart + 5));
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(4095UL)]
    public void Create_BadSize_Throws(ulong size) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => GuestMemory.Create(size));

    [Fact]
    public void WriteRead_RoundTrip()
    {
        using var mem = GuestMemory.Create(1 << 20);
        Assert.Equal(MemoryAccessResult.Ok, mem.Write(0x1234, [1, 2, 3, 4]));
        Span<byte> b = stackalloc byte[4];
        Assert.Equal(MemoryAccessResult.Ok, mem.Read(0x1234, b));
        Assert.Equal([1, 2, 3, 4], b.ToArray());
        Assert.True(mem.TryRead(0x1234, out uint v));
        Assert.Equal(0x04030201u, v);
    }

    [Theory]
    [InlineData(0x100000UL - 2, 4)] // straddles the end
    [InlineData(0x100000UL, 1)] // just past the end
    [InlineData(ulong.MaxValue - 1, 4)] // wraps around
    [InlineData(ulong.MaxValue, 1)]
    public void Access_OutsideRam_ReturnsOutOfRangeAndTouchesNothing(ulong gpa, int len)
    {
        using var mem = GuestMemory.Create(1 << 20);
        Assert.Equal(MemoryAccessResult.OutOfRange, mem.Write(gpa, new byte[len]));
        Assert.Equal(MemoryAccessResult.OutOfRange, mem.Read(gpa, new byte[len]));
        Assert.False(mem.TryGetSpan(gpa, len, out _));
        Assert.Equal(0, mem.GetHostPointer(gpa, (ulong)len));
        Assert.Empty(mem.Dirty.TakeDirtyPages());
    }

    [Fact]
    public void Access_AcrossPciHole_IsRejected()
    {
        using var mem = GuestMemory.Create(4UL << 30);
        Assert.Equal(MemoryAccessResult.OutOfRange, mem.Write(MemoryLayout.PciHoleStart - 2, new byte[4]));
    }

    [Fact]
    public void TryGetSpan_NegativeLength_Fails()
    {
        using var mem = GuestMemory.Create(1 << 20);
        Assert.False(mem.TryGetSpan(0, -1, out _));
    }

    [Fact]
    public void Write_MarksTouchedPagesDirty()
    {
        using var mem = GuestMemory.Create(1 << 20);
        mem.Write(0x1FFE, [1, 2, 3, 4]); // pages 1 and 2
        mem.Fill(0x5000, 1, 0xAA);
        Assert.Equal([1UL, 2UL, 5UL], mem.Dirty.TakeDirtyPages());
        Assert.Empty(mem.Dirty.TakeDirtyPages());
    }

    [Fact]
    public void Read_DoesNotMarkDirty()
    {
        using var mem = GuestMemory.Create(1 << 20);
        mem.Read(0x3000, new byte[16]);
        Assert.Empty(mem.Dirty.TakeDirtyPages());
    }

    [Fact]
    public void WriteObserver_SeesVmmWritesNotReads()
    {
        using var mem = GuestMemory.Create(1 << 20);
        var seen = new List<(ulong, ulong)>();
        mem.WriteObserver = (g, l) => seen.Add((g, l));
        mem.Write(0x2000, [1, 2, 3]);
        mem.TryWrite(0x3000, 7u);
        mem.Read(0x4000, new byte[8]);
        mem.TryGetSpan(0x5000, 8, out _);
        Assert.Equal([(0x2000UL, 3UL), (0x3000UL, 4UL)], seen);
    }
}
