// The per-VM translation cache's bookkeeping: units of rewritten pages are evicted when the page is written (with the
// VM's tracker) or by the periodic sweep (their keys hold the old generation), units of untouched pages stay, and a
// rewritten entry's last unit is offered to be taken over for the new generation.
using Ringvisor.Emulator.Memory;
using Ringvisor.Emulator.Translation;

namespace Ringvisor.Emulator.Tests.Translation;

public sealed class TranslationCacheTests
{
    private const int Bitness = 64;
    private const int UnitBytes = 100;

    private static TranslatedUnit NewUnit(UnitKey key) =>
        new(key, (_, _, _, _, _) => 0, instructionCount: 1, estimatedBytes: UnitBytes, sourceStart: 0, source: [0x90], helpers: null);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PageRewritten_DropsOnlyItsUnits_BySweepOrAtOnceWithTheTracker(bool evictOnWrite)
    {
        // Without the tracker the periodic sweep drops a rewritten page's units; with it (the VM's cache) the store's
        // report evicts them at once (the dispatcher validates chain links by Evicted alone). Other pages' units stay.
        var tracker = new CodePageTracker(1UL << 20);
        var cache = evictOnWrite ? new TranslationCache(1L << 20, tracker) : new TranslationCache(1L << 20);
        const ulong CodePage = 3, OtherPage = 4;
        Assert.True(tracker.TryMark(CodePage << 12));
        var stale = NewUnit(new UnitKey(CodePage, tracker.PageGeneration(CodePage), Bitness, 0x10));
        var kept = NewUnit(new UnitKey(OtherPage, tracker.PageGeneration(OtherPage), Bitness, 0x20));
        cache.Add(stale);
        cache.Add(kept);

        tracker.InvalidateRange(CodePage << 12, 1);
        Assert.NotEqual(stale.Key.Generation, tracker.PageGeneration(CodePage));
        if (!evictOnWrite)
        {
            Assert.False(stale.Evicted);
            cache.SweepStale(tracker);
        }

        Assert.True(stale.Evicted);
        Assert.False(cache.TryGet(stale.Key, out _));
        Assert.False(kept.Evicted);
        Assert.True(cache.TryGet(kept.Key, out var found));
        Assert.Same(kept, found);
        Assert.Equal(1, cache.StaleDropped);
        Assert.Equal(UnitBytes, cache.Bytes);
    }

    [Fact]
    public void Add_UnitOfAnAlreadyRewrittenGeneration_EvictedOnArrival()
    {
        // A unit the background worker finishes after its page was written (its key holds the old generation) is
        // evicted as it is added, not left to the sweep.
        var tracker = new CodePageTracker(1UL << 20);
        var cache = new TranslationCache(1L << 20, tracker);
        const ulong CodePage = 7;
        Assert.True(tracker.TryMark(CodePage << 12));
        var key = new UnitKey(CodePage, tracker.PageGeneration(CodePage), Bitness, 0);
        tracker.InvalidateRange(CodePage << 12, 1);

        var late = NewUnit(key);
        cache.Add(late);

        Assert.True(late.Evicted);
        Assert.False(cache.TryGet(key, out _));
        Assert.Equal(0, cache.Bytes);
    }

    [Fact]
    public void Earlier_RewrittenPage_OffersTheLatestUnitOfTheEntry_NotAfterAFlush()
    {
        // The unit of an entry stays offered for a later generation of its page (to be taken over when its bytes
        // are unchanged), also after it was evicted as stale; a whole flush lets it go.
        var tracker = new CodePageTracker(1UL << 20);
        var cache = new TranslationCache(1L << 20, tracker);
        const ulong CodePage = 9;
        Assert.True(tracker.TryMark(CodePage << 12));
        var old = NewUnit(new UnitKey(CodePage, tracker.PageGeneration(CodePage), Bitness, 0x40));
        cache.Add(old);
        tracker.InvalidateRange(CodePage << 12, 1);
        var now = new UnitKey(CodePage, tracker.PageGeneration(CodePage), Bitness, 0x40);

        Assert.True(old.Evicted);
        Assert.Same(old, cache.Earlier(now));
        Assert.Null(cache.Earlier(now with { EntryOffset = 0x41 }));
        Assert.Null(cache.Earlier(old.Key));

        var again = cache.Add(old.ForGeneration(now.Generation));
        Assert.False(again.Evicted);
        Assert.Equal(now, again.Key);
        Assert.Same(old.Code, again.Code);
        Assert.True(cache.TryGet(now, out var found));
        Assert.Same(again, found);

        tracker.TryMark(CodePage << 12);
        tracker.InvalidateRange(CodePage << 12, 1);
        cache.Flush();
        Assert.Null(cache.Earlier(new UnitKey(CodePage, tracker.PageGeneration(CodePage), Bitness, 0x40)));
    }

    [Fact]
    public void Add_UnitWithSideEntries_EnteredThereWhereNoUnitIs_EvictedWithItsPage()
    {
        // A unit's side entries go into the cache under their own offsets (same code, entry index, no bytes counted),
        // except where a unit of its own is already entered; a store to the page evicts them with the unit.
        var tracker = new CodePageTracker(1UL << 20);
        var cache = new TranslationCache(1L << 20, tracker);
        const ulong CodePage = 9;
        Assert.True(tracker.TryMark(CodePage << 12));
        int generation = tracker.PageGeneration(CodePage);
        var own = NewUnit(new UnitKey(CodePage, generation, Bitness, 0x40));
        cache.Add(own);
        var unit = new TranslatedUnit(new UnitKey(CodePage, generation, Bitness, 0x10), (_, _, _, _, _) => 0, 1, UnitBytes, 0, [0x90], null)
        {
            SideEntries = [0x20, 0x40],
        };
        cache.Add(unit);

        Assert.True(cache.TryGet(unit.Key with { EntryOffset = 0x20 }, out var side));
        Assert.NotSame(unit, side);
        Assert.Same(unit.Code, side!.Code);
        Assert.Equal(1, side.EntryIndex);
        Assert.True(cache.TryGet(own.Key, out var kept));
        Assert.Same(own, kept);
        Assert.Equal(2 * UnitBytes, cache.Bytes);

        tracker.InvalidateRange(CodePage << 12, 1);
        Assert.True(side.Evicted);
        Assert.True(unit.Evicted);
        Assert.False(cache.TryGet(side.Key, out _));
    }

    [Fact]
    public void SweepStaleIfDue_ManyAdditions_SweepsWithoutAnExplicitCall()
    {
        var tracker = new CodePageTracker(1UL << 20);
        var cache = new TranslationCache(1L << 30);
        const ulong CodePage = 5;
        Assert.True(tracker.TryMark(CodePage << 12));
        var stale = NewUnit(new UnitKey(CodePage, tracker.PageGeneration(CodePage), Bitness, 0));
        cache.Add(stale);
        tracker.InvalidateRange(CodePage << 12, 1);

        // Fresh units on other pages, each followed by the call the dispatcher makes after adding a unit.
        for (int i = 0; i < 1000 && !stale.Evicted; i++)
        {
            cache.Add(NewUnit(new UnitKey(6, tracker.PageGeneration(6), Bitness, i)));
            cache.SweepStaleIfDue(tracker);
        }

        Assert.True(stale.Evicted);
        Assert.Equal(1, cache.StaleDropped);
    }
}

public sealed class UnitCompilerMemoryTests
{
    [Fact]
    public void Compile_DropsTheIlGenerator_UnitStillCallable()
    {
        // mov eax, 1; add eax, ecx; ret — compiled as a unit: its DynamicMethod must not keep the ILGenerator alive
        // (UnitCompiler.s_dynamicMethodIlGenerator), and the dry run through the delegate still works.
        var page = new byte[4096];
        byte[] code = [0xB8, 0x01, 0x00, 0x00, 0x00, 0x01, 0xC8, 0xC3];
        code.CopyTo(page, 0x100);
        var instructions = UnitBuilder.Build(page, 0x100);
        Assert.Equal(3, instructions.Count);

        var unit = UnitCompiler.Compile(instructions, new UnitKey(7, 0, 64, 0x100), page);
        var method = Assert.IsType<System.Reflection.Emit.DynamicMethod>(unit.Code.Method);
        var field = typeof(System.Reflection.Emit.DynamicMethod).GetField("_ilGenerator", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance);
        Assert.NotNull(field);
        Assert.Null(field.GetValue(method));
        Assert.Equal(-1, unit.Code(null!, 0, -1, null, 0));
    }

    [Fact]
    public void Compile_DropsTheResolversIlAndTokens_UnitStillRuns()
    {
        // The compiled unit's DynamicResolver must not keep its IL bytes or token table (UnitCompiler.DropResolverCopies):
        // the method was compiled by the dry run and still runs a real budget afterwards.
        var page = new byte[4096];
        byte[] code = [0xB8, 0x01, 0x00, 0x00, 0x00, 0x01, 0xC8, 0xC3];
        code.CopyTo(page, 0x100);
        var unit = UnitCompiler.Compile(UnitBuilder.Build(page, 0x100), new UnitKey(7, 0, 64, 0x100), page);
        var method = Assert.IsType<System.Reflection.Emit.DynamicMethod>(unit.Code.Method);
        const System.Reflection.BindingFlags Private = System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance;
        object? resolver = typeof(System.Reflection.Emit.DynamicMethod).GetField("_resolver", Private)?.GetValue(method);
        Assert.NotNull(resolver);
        var il = Assert.IsType<byte[]>(resolver.GetType().GetField("m_code", Private)?.GetValue(resolver));
        Assert.Empty(il);
        object? scope = resolver.GetType().GetField("m_scope", Private)?.GetValue(resolver);
        var tokens = Assert.IsType<List<object?>>(scope?.GetType().GetField("m_tokens", Private)?.GetValue(scope));
        Assert.Single(tokens);
        Assert.Equal(-1, unit.Code(null!, 0, -1, null, 0));
    }

    [Fact]
    public unsafe void Compile_ExposesTheEntryPoint_CallableDirectly()
    {
        // The dispatcher calls units through their entry point (TranslatedUnit.Entry) rather than the delegate; on this
        // runtime it must be found, and calling it (a dry run) must behave as the delegate does.
        var page = new byte[4096];
        byte[] code = [0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3];
        code.CopyTo(page, 0x200);
        var unit = UnitCompiler.Compile(UnitBuilder.Build(page, 0x200), new UnitKey(9, 0, 64, 0x200), page);
        Assert.NotEqual(0, unit.Entry);
        var call = (delegate* managed<Ringvisor.Emulator.Instructions.Cpu, ulong, long, Iced.Intel.Instruction[]?, int>)unit.Entry;
        Assert.Equal(-1, call(null!, 0, -1, null));
    }
}
