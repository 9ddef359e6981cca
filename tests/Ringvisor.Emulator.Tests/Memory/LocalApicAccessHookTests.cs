// The xAPIC page is per-CPU: the MMU must send its accesses to the vCPU's own local APIC, at whatever base
// IA32_APIC_BASE currently holds (Intel SDM Vol. 3A §10.4.1, §10.4.5).
using Ringvisor.Core.Interrupts;
using Ringvisor.Emulator.Memory;

namespace Ringvisor.Emulator.Tests.Memory;

public sealed class LocalApicAccessHookTests : IDisposable
{
    private readonly MmuTestBed _bed = new();
    private readonly FakeApic _apic = new();

    public LocalApicAccessHookTests()
    {
        _bed.Mmu.PhysicalHook = new LocalApicAccessHook(_apic);
    }

    public void Dispose() => _bed.Dispose();

    [Fact]
    public void TryRead_DefaultApicBase_ReachesApicWithPageOffset()
    {
        Assert.True(_bed.Mmu.TryRead(0xFEE0_0030UL, out uint v));
        Assert.Equal(0x30u, v);
        Assert.True(_bed.Mmu.TryWrite(0xFEE0_00B0UL, 0u)); // EOI
        Assert.Equal([(false, 0x30UL, 4), (true, 0xB0UL, 4)], _apic.Accesses);
    }

    [Fact]
    public void TryRead_ApicRelocatedOntoRamAndFlushed_ApicSeesAccessNotRam()
    {
        Assert.True(_bed.Mmu.TryRead(0x9000UL, out uint before)); // caches the RAM page in the TLB
        Assert.Equal(0u, before);
        _apic.MmioBase = 0x9000;
        _bed.Mmu.FlushAll(); // what the core does after a write to IA32_APIC_BASE
        Assert.True(_bed.Mmu.TryRead(0x9020UL, out uint v));
        Assert.Equal(0x20u, v);
        Assert.True(_bed.Mmu.TryRead(0xFEE0_0020UL, out uint old));
        Assert.Equal(0xFFFF_FFFFu, old); // the old base is now an empty bus address
    }

    [Fact]
    public void TryRead_ApicGloballyDisabled_PageIsUnclaimed()
    {
        _apic.MmioBase = null;
        _bed.Mmu.FlushAll();
        Assert.True(_bed.Mmu.TryRead(0xFEE0_0030UL, out uint v));
        Assert.Equal(0xFFFF_FFFFu, v);
        Assert.Empty(_apic.Accesses);
    }

    private sealed class FakeApic : ILocalInterruptController
    {
        public List<(bool Write, ulong Offset, int Size)> Accesses { get; } = [];

        public ulong? MmioBase { get; set; } = 0xFEE0_0000;

        public bool HasInterrupt => false;

        public int AcknowledgeInterrupt() => -1;

        public bool TakeNmi() => false;

        public bool TakeInit() => false;

        public bool TryTakeStartup(out byte vector)
        {
            vector = 0;
            return false;
        }

        /// <summary>Reads return the offset, so tests can see which register was addressed.</summary>
        public void Read(ulong offset, Span<byte> data)
        {
            Accesses.Add((false, offset, data.Length));
            data.Clear();
            BitConverter.TryWriteBytes(data, (uint)offset);
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data) => Accesses.Add((true, offset, data.Length));

        public bool TryReadMsr(uint msr, out ulong value)
        {
            value = 0;
            return false;
        }

        public bool TryWriteMsr(uint msr, ulong value) => false;

        public void AttachWakeup(IVcpuWakeup wakeup)
        {
        }
    }
}
