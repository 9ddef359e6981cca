// Page walks in each mode, large pages, reserved bits and accessed/dirty flags (Intel SDM Vol. 3A §4.3-§4.8).
using Ringvisor.Emulator.Memory;
using static Ringvisor.Emulator.Tests.Memory.PageTableBuilder;

namespace Ringvisor.Emulator.Tests.Memory;

public sealed class MmuTranslationTests : IDisposable
{
    private readonly MmuTestBed _bed = new();

    public void Dispose() => _bed.Dispose();

    private ulong Translate(ulong linear, MemoryAccessKind kind = MemoryAccessKind.Read)
    {
        Assert.True(_bed.Mmu.TryTranslate(linear, kind, out ulong pa), $"unexpected fault {_bed.Mmu.LastFault}");
        return pa;
    }

    private MmuFault Fault(ulong linear, MemoryAccessKind kind = MemoryAccessKind.Read)
    {
        Assert.False(_bed.Mmu.TryTranslate(linear, kind, out _));
        return _bed.Mmu.LastFault;
    }

    [Fact]
    public void TryTranslate_PagingDisabled_IsIdentity()
    {
        Assert.Equal(PagingMode.None, _bed.Mmu.Mode);
        Assert.Equal(0x12_3456UL, Translate(0x12_3456));
        Assert.Equal(0xFEE0_0010UL, Translate(0xFEE0_0010, MemoryAccessKind.Write));
    }

    [Fact]
    public void TryRead_PagingDisabled_ReadsRam()
    {
        Assert.True(_bed.Memory.TryWrite(0x5008UL, 0x1122_3344_5566_7788UL));
        Assert.True(_bed.Mmu.TryRead(0x5008, out ulong v));
        Assert.Equal(0x1122_3344_5566_7788UL, v);
    }

    [Fact]
    public void TryTranslate_FourLevel4K_UsesPte()
    {
        _bed.Tables.Map4K(0x0000_7F12_3456_7000, 0x40_3000);
        _bed.UseLongMode();
        Assert.Equal(0x40_3ABCUL, Translate(0x0000_7F12_3456_7ABC));
    }

    [Fact]
    public void TryTranslate_FourLevel2M_AddsOffsetWithinLargePage()
    {
        _bed.Tables.Map2M(0xFFFF_8880_0020_0000, 0x60_0000);
        _bed.UseLongMode();
        Assert.Equal(0x6F_4321UL, Translate(0xFFFF_8880_002F_4321));
    }

    [Fact]
    public void TryTranslate_FourLevel1G_AddsOffsetWithinLargePage()
    {
        _bed.Tables.Map1G(0x40_0000_0000, 0x40_0000_0000);
        _bed.UseLongMode();
        Assert.Equal(0x40_0123_4567UL, Translate(0x40_0123_4567));
    }

    [Fact]
    public void TryTranslate_1GPageWithoutSupport_ReservedBitFault()
    {
        _bed.Tables.Map1G(0x40_0000_0000, 0x40_0000_0000);
        _bed.Mmu.Supports1GbPages = false;
        _bed.UseLongMode();
        var f = Fault(0x40_0000_0000);
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.ReservedBit, f.ErrorCode);
    }

    [Fact]
    public void TryTranslate_NonCanonical_ReportsNonCanonicalNotPageFault()
    {
        _bed.UseLongMode();
        var f = Fault(0x0000_8000_0000_0000);
        Assert.Equal(MmuFaultKind.NonCanonical, f.Kind);
        Assert.Equal(13, f.Vector);
    }

    [Fact]
    public void TryTranslate_NotPresentPte_PageFaultWithPClear()
    {
        _bed.Tables.Map4K(0x40_0000, 0x40_0000, flags: 0);
        _bed.UseLongMode();
        var f = Fault(0x40_0123, MemoryAccessKind.Write);
        Assert.Equal(MmuFaultKind.PageFault, f.Kind);
        Assert.Equal(PageFaultErrorCode.Write, f.ErrorCode);
        Assert.Equal(0x40_0123UL, f.Address);
    }

    [Theory]
    [InlineData(1, 1UL << 40)] // PTE address bit above MAXPHYADDR
    [InlineData(1, 1UL << 51)]
    [InlineData(2, 1UL << 45)] // PDE
    [InlineData(3, 1UL << 40)] // PDPTE
    [InlineData(4, 1UL << 50)] // PML4E
    [InlineData(4, PS)] // PS is reserved in a PML4E
    public void TryTranslate_FourLevelReservedBit_RsvdFault(int level, ulong bit)
    {
        _bed.Tables.Map4K(0x40_0000, 0x40_0000);
        ulong slot = _bed.Tables.Entry64(0x40_0000, level);
        _bed.Tables.Write64(slot, _bed.Tables.Read64(slot) | bit);
        _bed.UseLongMode();
        var f = Fault(0x40_0000);
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.ReservedBit, f.ErrorCode);
    }

    [Fact]
    public void TryTranslate_FourLevelIgnoredHighBits_NoFault()
    {
        // Bits 62:52 of 4-level entries are ignored (protection keys are off), unlike PAE where 62:M are reserved.
        _bed.Tables.Map4K(0x40_0000, 0x40_0000, flags: P | RW | US | (0x7FFUL << 52));
        _bed.UseLongMode();
        Assert.Equal(0x40_0000UL, Translate(0x40_0000));
    }

    [Fact]
    public void TryTranslate_XdWithNxeClear_RsvdFault()
    {
        _bed.Tables.Map4K(0x40_0000, 0x40_0000, flags: P | RW | US | XD);
        _bed.UseLongMode(nxe: false);
        var f = Fault(0x40_0000);
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.ReservedBit, f.ErrorCode);
    }

    [Theory]
    [InlineData(13)]
    [InlineData(20)]
    public void TryTranslate_2MPageLowReservedBits_RsvdFault(int bit)
    {
        _bed.Tables.Map2M(0x20_0000, 0x40_0000 | (1UL << bit));
        _bed.UseLongMode();
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.ReservedBit, Fault(0x20_0000).ErrorCode);
    }

    [Fact]
    public void TryTranslate_1GPageLowReservedBit_RsvdFault()
    {
        _bed.Tables.Map1G(0x4000_0000, 0x4000_0000 | (1UL << 29));
        _bed.UseLongMode();
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.ReservedBit, Fault(0x4000_0000).ErrorCode);
    }

    [Fact]
    public void TryTranslate_ReservedBitBeatsLowerNotPresent_RsvdFault()
    {
        // The walk stops at the first entry with a reserved bit even though the PTE below is not present.
        _bed.Tables.Map4K(0x40_0000, 0x40_0000, flags: 0);
        ulong pde = _bed.Tables.Entry64(0x40_0000, 2);
        _bed.Tables.Write64(pde, _bed.Tables.Read64(pde) | (1UL << 41));
        _bed.UseLongMode();
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.ReservedBit | PageFaultErrorCode.Write,
            Fault(0x40_0000, MemoryAccessKind.Write).ErrorCode);
    }

    [Fact]
    public void TryTranslate_Read_SetsAccessedOnEveryLevelButNotDirty()
    {
        ulong pte = _bed.Tables.Map4K(0x40_0000, 0x40_0000);
        _bed.UseLongMode();
        Translate(0x40_0010);
        for (int level = 1; level <= 4; level++)
        {
            ulong e = _bed.Tables.Read64(_bed.Tables.Entry64(0x40_0000, level));
            Assert.True((e & A) != 0, $"A not set at level {level}");
            Assert.True((e & D) == 0, $"D set at level {level} by a read");
        }

        Assert.Equal(0x40_0000UL | P | RW | US | A, _bed.Tables.Read64(pte));
    }

    [Fact]
    public void TryWrite_AfterCachedRead_SetsDirtyOnLeafOnly()
    {
        ulong pte = _bed.Tables.Map4K(0x40_0000, 0x40_0000);
        _bed.UseLongMode();
        Assert.True(_bed.Mmu.TryRead(0x40_0010, out uint _));
        Assert.True((_bed.Tables.Read64(pte) & D) == 0);
        Assert.True(_bed.Mmu.TryWrite(0x40_0010, 7u));
        Assert.True((_bed.Tables.Read64(pte) & D) != 0);
        for (int level = 2; level <= 4; level++)
        {
            Assert.True((_bed.Tables.Read64(_bed.Tables.Entry64(0x40_0000, level)) & D) == 0);
        }
    }

    [Fact]
    public void TryWrite_LargePage_SetsDirtyInPde()
    {
        ulong pde = _bed.Tables.Map2M(0x20_0000, 0x40_0000);
        _bed.UseLongMode();
        Assert.True(_bed.Mmu.TryWrite(0x20_1000, (byte)1));
        Assert.Equal(A | D, _bed.Tables.Read64(pde) & (A | D));
    }

    [Fact]
    public void TryWrite_Faulting_SetsNoAccessedFlags()
    {
        ulong pte = _bed.Tables.Map4K(0x40_0000, 0x40_0000, flags: P | US);
        _bed.UseLongMode();
        Assert.False(_bed.Mmu.TryWrite(0x40_0000, 1u));
        Assert.Equal(0UL, _bed.Tables.Read64(pte) & (A | D));
    }

    [Fact]
    public void TryWrite_PagingStructurePage_MarkedDirtyForMigration()
    {
        ulong pte = _bed.Tables.Map4K(0x40_0000, 0x40_0000);
        _bed.UseLongMode();
        _ = _bed.Memory.Dirty.TakeDirtyPages();
        Assert.True(_bed.Mmu.TryWrite(0x40_0000, 1u));
        var dirty = _bed.Memory.Dirty.TakeDirtyPages();
        Assert.Contains(pte >> 12, dirty);
        Assert.Contains(0x40_0000UL >> 12, dirty);
    }

    // ------------------------------------------------------------------ PAE

    [Fact]
    public void TryTranslate_Pae4KAnd2M_Translate()
    {
        _bed.Tables.MapPae4K(0xC000_1000, 0x50_0000);
        _bed.Tables.MapPae2M(0x8020_0000, 0x80_0000);
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.Pae(_bed.Tables.Root)));
        Assert.Equal(PagingMode.Pae, _bed.Mmu.Mode);
        Assert.Equal(0x50_0123UL, Translate(0xC000_1123));
        Assert.Equal(0x8F_0000UL, Translate(0x802F_0000));
    }

    [Fact]
    public void TryTranslate_PaeBit62_RsvdFault()
    {
        _bed.Tables.MapPae4K(0x1000, 0x50_0000, P | RW | US | (1UL << 62));
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.Pae(_bed.Tables.Root)));
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.ReservedBit, Fault(0x1000).ErrorCode);
    }

    [Fact]
    public void TryTranslate_PaeNotPresentPdpte_PageFaultPClear()
    {
        _bed.Tables.MapPae4K(0x1000, 0x50_0000);
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.Pae(_bed.Tables.Root)));
        var f = Fault(0x4000_1000);
        Assert.Equal(MmuFaultKind.PageFault, f.Kind);
        Assert.Equal(PageFaultErrorCode.None, f.ErrorCode);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    [InlineData(8)]
    [InlineData(40)]
    [InlineData(63)]
    public void SetPagingState_PaePdpteReservedBit_ReturnsFalseAndKeepsOldState(int bit)
    {
        _bed.Tables.MapPae4K(0x1000, 0x50_0000);
        _bed.Tables.Write64(_bed.Tables.Root, _bed.Tables.Read64(_bed.Tables.Root) | (1UL << bit));
        Assert.False(_bed.Mmu.SetPagingState(MmuTestBed.Pae(_bed.Tables.Root)));
        Assert.Equal(PagingMode.None, _bed.Mmu.Mode);
    }

    [Fact]
    public void WriteCr3_PaeBadPdpte_ReturnsFalseAndKeepsCr3()
    {
        _bed.Tables.MapPae4K(0x1000, 0x50_0000);
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.Pae(_bed.Tables.Root)));
        var other = new PageTableBuilder(_bed.Memory, 0x80_0000);
        other.Write64(other.Root + 8, 0x20_0000 | P | (1UL << 6));
        Assert.False(_bed.Mmu.WriteCr3(other.Root));
        Assert.Equal(_bed.Tables.Root, _bed.Mmu.State.Cr3);
        Assert.Equal(0x50_0000UL, Translate(0x1000));
    }

    [Fact]
    public void TryTranslate_PaePdptesAreLoadedAtCr3Load_NotReadLater()
    {
        // SDM Vol. 3A §4.4.1: PDPTEs live in registers; changing the PDPT in memory has no effect until CR3 is loaded.
        _bed.Tables.MapPae4K(0x1000, 0x50_0000);
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.Pae(_bed.Tables.Root)));
        _bed.Tables.Write64(_bed.Tables.Root, 0);
        _bed.Mmu.FlushAll();
        Assert.Equal(0x50_0000UL, Translate(0x1000));
        Assert.True(_bed.Mmu.WriteCr3(_bed.Tables.Root));
        Assert.False(_bed.Mmu.TryTranslate(0x1000, MemoryAccessKind.Read, out _));
    }

    [Fact]
    public void SetPagingState_PaeWpToggled_KeepsPdpteRegisters()
    {
        // SDM Vol. 3A §4.4.1: only CR0.PG/CD/NW and CR4.PAE/PGE/PSE/SMEP changes (or a CR3 load) reload the PDPTEs.
        _bed.Tables.MapPae4K(0x1000, 0x50_0000);
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.Pae(_bed.Tables.Root)));
        _bed.Tables.Write64(_bed.Tables.Root, 0);
        var s = _bed.Mmu.State;
        s.Cr0 &= ~PagingState.Cr0Wp;
        Assert.True(_bed.Mmu.SetPagingState(s));
        Assert.Equal(0x50_0000UL, Translate(0x1000));
        s.Cr4 |= PagingState.Cr4Pge;
        Assert.True(_bed.Mmu.SetPagingState(s));
        Assert.False(_bed.Mmu.TryTranslate(0x1000, MemoryAccessKind.Read, out _));
    }

    [Fact]
    public void Load_WithSavedPdpteRegisters_UsesThemNotMemory()
    {
        _bed.Tables.MapPae4K(0x1000, 0x50_0000);
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.Pae(_bed.Tables.Root)));
        ulong[] saved = _bed.Mmu.PdpteRegisters.ToArray();
        _bed.Tables.Write64(_bed.Tables.Root, 0); // the PDPT in memory changes after the CR3 load

        using var restored = new Mmu(_bed.System);
        restored.Load(_bed.Mmu.State, saved);
        Assert.True(restored.TryTranslate(0x1000, MemoryAccessKind.Read, out ulong pa));
        Assert.Equal(0x50_0000UL, pa);
    }

    [Fact]
    public void SaveRestore_PaeState_RoundTripsIntoAnotherMmu()
    {
        _bed.Tables.MapPae4K(0x1000, 0x50_0000);
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.Pae(_bed.Tables.Root, cpl: 3)));
        var saved = _bed.Mmu.Save();
        _bed.Tables.Write64(_bed.Tables.Root, 0);

        using var restored = new Mmu(_bed.System);
        restored.Restore(saved);
        Assert.Equal(PagingMode.Pae, restored.Mode);
        Assert.Equal(3, restored.State.Cpl);
        Assert.True(restored.TryRead(0x1000, out byte _));
        Assert.Throws<NotSupportedException>(() => restored.Restore(saved with { Version = 99 }));
    }

    // ------------------------------------------------------------------ 32-bit

    [Fact]
    public void TryTranslate_TwoLevel4K_UsesPte()
    {
        _bed.Tables.Map32_4K(0xC012_3000, 0x7_7000);
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.TwoLevel(_bed.Tables.Root)));
        Assert.Equal(PagingMode.TwoLevel, _bed.Mmu.Mode);
        Assert.Equal(0x7_7FFFUL, Translate(0xC012_3FFF));
    }

    [Fact]
    public void TryTranslate_TwoLevel4MWithPse36_UsesHighAddressBits()
    {
        _bed.Tables.Map32_4M(0x8040_0000, 0x12_0080_0000);
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.TwoLevel(_bed.Tables.Root)));
        Assert.Equal(0x12_0091_2345UL, Translate(0x8051_2345));
    }

    [Fact]
    public void TryTranslate_TwoLevelPsWithoutCr4Pse_TreatsPdeAsTablePointer()
    {
        // With CR4.PSE = 0 the PS bit is ignored: the PDE points at a page table.
        ulong table = _bed.Tables.AllocateTable();
        _bed.Tables.Write32(table + 4 * 5, 0x9_9000 | (uint)(P | RW));
        _bed.Tables.Write32(_bed.Tables.Root + 4 * 2, (uint)table | (uint)(P | RW | PS));
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.TwoLevel(_bed.Tables.Root, pse: false)));
        Assert.Equal(0x9_9010UL, Translate(0x0080_5010));
    }

    [Fact]
    public void TryTranslate_TwoLevel4MBit21_RsvdFault()
    {
        ulong slot = _bed.Tables.Map32_4M(0x40_0000, 0x80_0000);
        _bed.Tables.Write32(slot, _bed.Tables.Read32(slot) | (1u << 21));
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.TwoLevel(_bed.Tables.Root)));
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.ReservedBit, Fault(0x40_0000).ErrorCode);
    }

    [Fact]
    public void TryWrite_TwoLevel_SetsAccessedAndDirtyIn32BitEntries()
    {
        ulong pte = _bed.Tables.Map32_4K(0x40_0000, 0x40_0000);
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.TwoLevel(_bed.Tables.Root)));
        Assert.True(_bed.Mmu.TryWrite(0x40_0004, 0xAABBCCDDu));
        Assert.Equal((uint)(A | D), _bed.Tables.Read32(pte) & (uint)(A | D));
        Assert.Equal((uint)A, _bed.Tables.Read32(_bed.Tables.Entry32(0x40_0000, 2)) & (uint)(A | D));
        Assert.Equal(0xAABBCCDDu, BitConverter.ToUInt32(_bed.ReadPhysical(0x40_0004, 4)));
    }

    [Fact]
    public void TryTranslate_TwoLevelFetchFault_NoInstructionFetchBitWithoutSmep()
    {
        // 32-bit paging has no NX: I/D is reported only when CR4.SMEP = 1 (SDM Vol. 3A §4.7).
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.TwoLevel(_bed.Tables.Root)));
        Assert.Equal(PageFaultErrorCode.None, Fault(0x1234_5000, MemoryAccessKind.Execute).ErrorCode);
    }

    [Fact]
    public void TryTranslate_LegacyModes_WrapLinearAddressAt4GiB()
    {
        _bed.Tables.Map32_4K(0xFFFF_F000, 0x3000);
        _bed.Tables.Map32_4K(0, 0x5000);
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.TwoLevel(_bed.Tables.Root)));
        Assert.True(_bed.Memory.TryWrite(0x3FFEUL, (ushort)0x2211));
        Assert.True(_bed.Memory.TryWrite(0x5000UL, (ushort)0x4433));
        Assert.True(_bed.Mmu.TryRead(0xFFFF_FFFE, out uint v));
        Assert.Equal(0x4433_2211u, v);
    }
}
