// TLB caching and invalidation (Intel SDM Vol. 3A §4.10.4): the MMU may use a stale translation until the guest
// invalidates it, and must drop it exactly when the architecture says.
using Ringvisor.Emulator.Memory;
using static Ringvisor.Emulator.Tests.Memory.PageTableBuilder;

namespace Ringvisor.Emulator.Tests.Memory;

public sealed class MmuTlbTests : IDisposable
{
    private const ulong Linear = 0x40_0000;
    private const ulong FrameA = 0x20_0000;
    private const ulong FrameB = 0x30_0000;
    private readonly MmuTestBed _bed = new();

    public MmuTlbTests()
    {
        Assert.True(_bed.Memory.TryWrite(FrameA, 0xAAAA_AAAAu));
        Assert.True(_bed.Memory.TryWrite(FrameB, 0xBBBB_BBBBu));
    }

    public void Dispose() => _bed.Dispose();

    private uint ReadLinear(ulong linear = Linear)
    {
        Assert.True(_bed.Mmu.TryRead(linear, out uint v), $"fault {_bed.Mmu.LastFault}");
        return v;
    }

    /// <summary>Maps Linear to frame A, caches it, then silently repoints the PTE to frame B.</summary>
    private ulong CacheThenRemap(ulong flags = P | RW | US, ulong extraCr4 = 0)
    {
        ulong pte = _bed.Tables.Map4K(Linear, FrameA, flags);
        _bed.UseLongMode(extraCr4);
        Assert.Equal(0xAAAA_AAAAu, ReadLinear());
        _bed.Tables.Write64(pte, FrameB | flags);
        return pte;
    }

    [Fact]
    public void TryRead_PteChangedWithoutInvalidation_UsesCachedTranslation()
    {
        CacheThenRemap();
        Assert.Equal(0xAAAA_AAAAu, ReadLinear());
    }

    [Fact]
    public void InvalidatePage_AfterPteChange_UsesNewTranslation()
    {
        CacheThenRemap();
        _bed.Mmu.InvalidatePage(Linear + 0x123);
        Assert.Equal(0xBBBB_BBBBu, ReadLinear());
    }

    [Fact]
    public void InvalidatePage_OtherPage_KeepsTranslation()
    {
        CacheThenRemap();
        _bed.Mmu.InvalidatePage(Linear + 0x1000);
        Assert.Equal(0xAAAA_AAAAu, ReadLinear());
    }

    [Fact]
    public void InvalidatePage_InsideLargePage_DropsEveryFragment()
    {
        const ulong largeB = 0x40_0000; // 2 MiB aligned
        ulong pde = _bed.Tables.Map2M(0x20_0000, FrameA);
        _bed.UseLongMode();
        Assert.True(_bed.Memory.TryWrite(FrameA + 0x5000, 0x5555_5555u));
        Assert.True(_bed.Memory.TryWrite(largeB + 0x5000, 0x6666_6666u));
        Assert.Equal(0xAAAA_AAAAu, ReadLinear(0x20_0000));
        Assert.Equal(0x5555_5555u, ReadLinear(0x20_5000));
        _bed.Tables.Write64(pde, largeB | P | RW | US | PS);
        _bed.Mmu.InvalidatePage(0x20_0000);
        Assert.Equal(0x6666_6666u, ReadLinear(0x20_5000));
    }

    [Fact]
    public void InvalidatePage_AfterThousandsOfRefills_StillDropsLargePageFragmentsAndFlushesKeepGlobals()
    {
        // Enough INVLPG/refill cycles to overflow the MMU's list of filled slots, so the full-sweep paths run.
        const ulong largeB = 0x40_0000;
        ulong pde = _bed.Tables.Map2M(0x20_0000, FrameA, P | RW | US | G);
        ulong pte = _bed.Tables.Map4K(Linear, FrameA);
        _bed.UseLongMode(PagingState.Cr4Pge);
        Assert.True(_bed.Memory.TryWrite(FrameA + 0x7000, 0x7777_7777u));
        Assert.True(_bed.Memory.TryWrite(largeB + 0x7000, 0x8888_8888u));
        Assert.Equal(0x7777_7777u, ReadLinear(0x20_7000));
        for (int i = 0; i < 5000; i++)
        {
            _bed.Mmu.InvalidatePage(Linear);
            ReadLinear();
        }

        _bed.Tables.Write64(pte, FrameB | P | RW | US);
        _bed.Tables.Write64(pde, largeB | P | RW | US | PS | G);
        Assert.True(_bed.Mmu.WriteCr3(_bed.Tables.Root));
        Assert.Equal(0x7777_7777u, ReadLinear(0x20_7000)); // global fragment survived the CR3 load
        Assert.Equal(0xBBBB_BBBBu, ReadLinear()); // the non-global page did not
        for (int i = 0; i < 5000; i++)
        {
            _bed.Mmu.InvalidatePage(Linear);
            ReadLinear();
        }

        _bed.Mmu.InvalidatePage(0x20_0000);
        Assert.Equal(0x8888_8888u, ReadLinear(0x20_7000));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void WriteCr3_SlotRefilledBetweenGlobalAndNonGlobal_FlushesExactlyTheNonGlobal(bool globalFirst)
    {
        // Two pages in the same TLB set (and class): the second fill replaces the first's entry in place. A CR3 load
        // walks only the slots noted for non-global entries, so a slot whose entry changes kind must be noted again.
        ulong other = Linear + ((ulong)Mmu.TlbSets << 12);
        ulong globalPage = globalFirst ? Linear : other;
        ulong localPage = globalFirst ? other : Linear;
        ulong globalPte = _bed.Tables.Map4K(globalPage, FrameA, P | RW | US | G);
        ulong localPte = _bed.Tables.Map4K(localPage, FrameA, P | RW | US);
        _bed.UseLongMode(PagingState.Cr4Pge);
        Assert.Equal(0xAAAA_AAAAu, ReadLinear(globalFirst ? globalPage : localPage));
        Assert.Equal(0xAAAA_AAAAu, ReadLinear(globalFirst ? localPage : globalPage));
        _bed.Tables.Write64(globalPte, FrameB | P | RW | US | G);
        _bed.Tables.Write64(localPte, FrameB | P | RW | US);

        Assert.True(_bed.Mmu.WriteCr3(_bed.Tables.Root));

        if (globalFirst)
        {
            // The non-global entry now in the slot is dropped.
            Assert.Equal(0xBBBB_BBBBu, ReadLinear(localPage));
        }
        else
        {
            // The global entry now in the slot survives, and a full flush still finds it.
            Assert.Equal(0xAAAA_AAAAu, ReadLinear(globalPage));
            _bed.Mmu.FlushAll();
            Assert.Equal(0xBBBB_BBBBu, ReadLinear(globalPage));
        }
    }

    [Fact]
    public void WriteCr3_SameValue_FlushesNonGlobal()
    {
        CacheThenRemap();
        Assert.True(_bed.Mmu.WriteCr3(_bed.Tables.Root));
        Assert.Equal(0xBBBB_BBBBu, ReadLinear());
    }

    [Fact]
    public void WriteCr3_GlobalPageWithPge_SurvivesReload()
    {
        CacheThenRemap(P | RW | US | G, PagingState.Cr4Pge);
        Assert.True(_bed.Mmu.WriteCr3(_bed.Tables.Root));
        Assert.Equal(0xAAAA_AAAAu, ReadLinear());
    }

    [Fact]
    public void WriteCr3_GlobalBitWithoutPge_IsFlushed()
    {
        CacheThenRemap(P | RW | US | G);
        Assert.True(_bed.Mmu.WriteCr3(_bed.Tables.Root));
        Assert.Equal(0xBBBB_BBBBu, ReadLinear());
    }

    [Fact]
    public void InvalidatePage_GlobalPage_IsDropped()
    {
        CacheThenRemap(P | RW | US | G, PagingState.Cr4Pge);
        _bed.Mmu.InvalidatePage(Linear);
        Assert.Equal(0xBBBB_BBBBu, ReadLinear());
    }

    [Fact]
    public void SetPagingState_PgeCleared_FlushesGlobalPages()
    {
        CacheThenRemap(P | RW | US | G, PagingState.Cr4Pge);
        Assert.True(_bed.Mmu.SetPagingState(MmuTestBed.LongMode(_bed.Tables.Root)));
        Assert.Equal(0xBBBB_BBBBu, ReadLinear());
    }

    [Theory]
    [InlineData(nameof(PagingState.Cr0Wp))]
    [InlineData(nameof(PagingState.Cr4Smep))]
    [InlineData(nameof(PagingState.Cr4Smap))]
    [InlineData(nameof(PagingState.EferNxe))]
    public void SetPagingState_TranslationControlChanged_FlushesAll(string bit)
    {
        // A global supervisor page: readable at CPL 0 under every setting of these bits.
        CacheThenRemap(P | RW | G, PagingState.Cr4Pge);
        var s = _bed.Mmu.State;
        switch (bit)
        {
            case nameof(PagingState.Cr0Wp): s.Cr0 ^= PagingState.Cr0Wp; break;
            case nameof(PagingState.Cr4Smep): s.Cr4 ^= PagingState.Cr4Smep; break;
            case nameof(PagingState.Cr4Smap): s.Cr4 ^= PagingState.Cr4Smap; break;
            default: s.Efer ^= PagingState.EferNxe; break;
        }

        Assert.True(_bed.Mmu.SetPagingState(s));
        Assert.Equal(0xBBBB_BBBBu, ReadLinear());
    }

    [Fact]
    public void SetPagingState_OnlyCplOrUnrelatedBitsChanged_KeepsTranslations()
    {
        CacheThenRemap();
        var s = _bed.Mmu.State;
        s.Cr0 |= 1UL << 1; // CR0.MP: no effect on paging
        s.Cr4 |= 1UL << 9; // CR4.OSFXSR
        Assert.True(_bed.Mmu.SetPagingState(s));
        Assert.Equal(0xAAAA_AAAAu, ReadLinear());
    }

    [Fact]
    public void SetPagingState_Cr3Changed_FlushesNonGlobal()
    {
        CacheThenRemap();
        var other = new PageTableBuilder(_bed.Memory, 0x80_0000);
        other.Map4K(Linear, FrameB);
        var s = _bed.Mmu.State;
        s.Cr3 = other.Root;
        Assert.True(_bed.Mmu.SetPagingState(s));
        Assert.Equal(0xBBBB_BBBBu, ReadLinear());
    }

    [Fact]
    public void RequestFlush_FromAnotherThread_TakesEffectAtPoll()
    {
        CacheThenRemap();
        var t = new Thread(() => _bed.System.RequestFlushAll());
        t.Start();
        t.Join();
        Assert.Equal(0xAAAA_AAAAu, ReadLinear()); // nothing happens until the owner polls
        _bed.Mmu.Poll();
        Assert.Equal(0xBBBB_BBBBu, ReadLinear());
    }

    [Fact]
    public void TryWrite_ReadOnlyThenMadeWritableWithInvlpg_Succeeds()
    {
        ulong pte = _bed.Tables.Map4K(Linear, FrameA, P | US);
        _bed.UseLongMode();
        Assert.False(_bed.Mmu.TryWrite(Linear, 1u));
        _bed.Tables.Write64(pte, FrameA | P | RW | US);
        _bed.Mmu.InvalidatePage(Linear);
        Assert.True(_bed.Mmu.TryWrite(Linear, 1u));
    }

    [Fact]
    public void TryWrite_DirtyClearedByGuestAfterInvlpg_SetsDirtyAgain()
    {
        ulong pte = _bed.Tables.Map4K(Linear, FrameA);
        _bed.UseLongMode();
        Assert.True(_bed.Mmu.TryWrite(Linear, 1u));
        _bed.Tables.Write64(pte, _bed.Tables.Read64(pte) & ~D);
        _bed.Mmu.InvalidatePage(Linear);
        Assert.True(_bed.Mmu.TryWrite(Linear, 2u));
        Assert.True((_bed.Tables.Read64(pte) & D) != 0);
    }

    [Fact]
    public void Statistics_HitsMissesWalksFaults_Count()
    {
        _bed.Tables.Map4K(Linear, FrameA);
        _bed.UseLongMode();
        var before = _bed.Mmu.Statistics;
        ReadLinear();
        ReadLinear();
        ReadLinear();
        Assert.False(_bed.Mmu.TryRead(0x7000_0000, out uint _));
        var after = _bed.Mmu.Statistics;
        Assert.Equal(2, after.TlbHits - before.TlbHits);
        Assert.Equal(2, after.TlbMisses - before.TlbMisses);
        Assert.Equal(2, after.PageWalks - before.PageWalks);
        Assert.Equal(1, after.PageFaults - before.PageFaults);
    }
}
