// What the machine tells a guest differently under kvm: the memory map reserves the pages KVM uses for the real-mode
// TSS and the identity map (KVM_SET_TSS_ADDR / KVM_SET_IDENTITY_MAP_ADDR), which lie in the 32-bit PCI hole where a
// guest would otherwise consider them free for PCI BARs. Read from the multiboot memory map a tiny test kernel copies
// out (TestKernels.EchoCommandLineAndMemoryMap).
using Ringvisor.Core.Memory;
using Ringvisor.Core.Vm;
using Ringvisor.Kvm;
using Ringvisor.Machine.Boot;
using Ringvisor.TestSupport;

namespace Ringvisor.Machine.Tests.Integration;

public sealed class KvmBootMachineTests
{
    private const uint E820Reserved = 2; // multiboot memory map type 2 (multiboot spec §3.3), as e820

    private static List<(ulong Base, ulong Length, uint Type)> BootAndReadMemoryMap(EngineKind engine)
    {
        using var m = TestMachine.Build(engine, TestKernels.EchoCommandLineAndMemoryMap(0x21), memory: 64UL << 20, debugExit: true);
        m.Vm.Start();
        var result = m.Vm.WaitForStop(TimeSpan.FromSeconds(60));
        Assert.Equal(VmStopReason.DebugExit, result.Reason);

        var mem = m.Vm.Memory;
        Assert.True(mem.TryRead(TestKernels.ResultArea - 4, out uint length));
        var entries = new List<(ulong, ulong, uint)>();
        for (uint off = 0; off + 24 <= length; off += 24)
        {
            Assert.True(mem.TryRead(TestKernels.ResultArea + off + 4, out ulong b));
            Assert.True(mem.TryRead(TestKernels.ResultArea + off + 12, out ulong len));
            Assert.True(mem.TryRead(TestKernels.ResultArea + off + 20, out uint type));
            entries.Add((b, len, type));
        }

        return entries;
    }

    [KvmFact]
    public void MemoryMap_Kvm_ReservesTheTssAndIdentityMapPages()
    {
        var map = BootAndReadMemoryMap(EngineKind.Kvm);

        foreach (var (address, size) in KvmEngine.ReservedGuestPhysicalRanges)
        {
            Assert.Contains((address, size, E820Reserved), map);
        }

        Assert.Contains(map, e => e.Base <= KvmEngine.IdentityMapAddress && KvmEngine.IdentityMapAddress < e.Base + e.Length);
        Assert.Contains(map, e => e.Base <= KvmEngine.TssAddress + 0x2FFFUL && KvmEngine.TssAddress + 0x2FFFUL < e.Base + e.Length);
        for (int i = 1; i < map.Count; i++)
        {
            Assert.True(map[i - 1].Base + map[i - 1].Length <= map[i].Base, "memory map entries overlap or are out of order");
        }
    }

    [Fact]
    public void MemoryMap_Bt_HasNoKvmReservation()
    {
        var map = BootAndReadMemoryMap(EngineKind.Bt);

        Assert.DoesNotContain(map, e => e.Base <= KvmEngine.IdentityMapAddress && KvmEngine.IdentityMapAddress < e.Base + e.Length);
    }
    [Fact]
    public void E820Map_KvmReservedRanges_SortedBetweenLowAndHighRam()
    {
        using var memory = GuestMemory.Create((3UL << 30) + (256UL << 20));

        var map = E820Map.Build(memory, KvmEngine.ReservedGuestPhysicalRanges);

        int at = map.ToList().IndexOf(new E820Entry(KvmEngine.IdentityMapAddress, 0x4000, E820Type.Reserved));
        Assert.True(at > 0, "the KVM pages are not in the map");
        Assert.True(map[at - 1].End <= KvmEngine.IdentityMapAddress);
        Assert.Equal(MemoryLayout.HighMemoryStart, map[at + 1].Address);
    }

    [Fact]
    public void E820Map_ReservedRangeOverlappingRam_Throws()
    {
        using var memory = GuestMemory.Create(64UL << 20);

        Assert.Throws<ArgumentException>(() => E820Map.Build(memory, [(0x100_0000UL, 0x1000UL)]));
    }
}
