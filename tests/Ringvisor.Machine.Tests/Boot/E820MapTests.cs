// The guest memory map for small memory, memory that reaches into and past the PCI hole.
using Ringvisor.Core.Memory;
using Ringvisor.Machine.Boot;

namespace Ringvisor.Machine.Tests.Boot;

public sealed class E820MapTests
{
    [Fact]
    public void Build_SmallMemory_LowRamReservedHoleAndHighRam()
    {
        using var memory = GuestMemory.Create(64UL << 20);

        var map = E820Map.Build(memory);

        Assert.Equal(
            [
                new E820Entry(0, 0x9FC00, E820Type.Ram),
                new E820Entry(0x9FC00, 0x100000 - 0x9FC00, E820Type.Reserved),
                new E820Entry(0x100000, (64UL << 20) - 0x100000, E820Type.Ram),
            ],
            map);
    }

    [Fact]
    public void Build_MemoryBeyondPciHole_RamResumesAt4GiB()
    {
        const ulong Size = (4UL << 30) + (512UL << 20);
        using var memory = GuestMemory.Create(Size);

        var map = E820Map.Build(memory);

        Assert.Equal(4, map.Count);
        Assert.Equal(new E820Entry(0x100000, 0xC000_0000 - 0x100000, E820Type.Ram), map[2]);
        Assert.Equal(new E820Entry(0x1_0000_0000, Size - 0xC000_0000, E820Type.Ram), map[3]);
        Assert.Equal(Size, map.Where(e => e.Type == E820Type.Ram).Aggregate(0UL, (sum, e) => sum + e.Size) + 0x100000 - 0x9FC00);
    }

    [Fact]
    public void Build_Always_SortedAndDisjoint()
    {
        using var memory = GuestMemory.Create(5UL << 30);

        var map = E820Map.Build(memory);

        for (int i = 1; i < map.Count; i++)
        {
            Assert.True(map[i - 1].End <= map[i].Address);
        }

        Assert.DoesNotContain(map, e => e.Type == E820Type.Ram && e.Address < 0xC000_0000 && e.End > 0xC000_0000);
    }

    [Fact]
    public void Build_Always_MpTableAreaIsReserved()
    {
        using var memory = GuestMemory.Create(32UL << 20);

        var map = E820Map.Build(memory);

        foreach (ulong address in new ulong[] { MpTable.FloatingPointerAddress, 0xF0000, 0xFFFFF })
        {
            Assert.Equal(E820Type.Reserved, map.Single(e => e.Address <= address && address < e.End).Type);
        }
    }

    [Fact]
    public void Load_With4GiBPlusMemory_ZeroPageCarriesHighRam()
    {
        using var files = new TempFiles();
        const ulong Size = (4UL << 30) + (256UL << 20);
        using var memory = GuestMemory.Create(Size);
        string kernel = files.Write("bzImage", new FakeBzImage().Build());
        string initrd = files.WritePattern("initrd", 10_000, seed: 7);

        var result = KernelLoader.Load(memory, new KernelLoadOptions(kernel, [initrd], "", 1));

        Assert.Equal(4, memory.U8(0x7000 + 0x1E8));
        ulong last = 0x7000 + 0x2D0 + (3 * 20);
        Assert.Equal(0x1_0000_0000UL, memory.U64(last));
        Assert.Equal(Size - 0xC000_0000, memory.U64(last + 8));
        Assert.Equal(1U, memory.U32(last + 16));
        // initrd_addr_max (2 GiB - 1) caps the initrd below the top of low RAM.
        Assert.True(result.InitrdAddress + result.InitrdSize <= 0x8000_0000);
        Assert.True(result.InitrdAddress >= 0x8000_0000 - 0x4000);
    }
}
