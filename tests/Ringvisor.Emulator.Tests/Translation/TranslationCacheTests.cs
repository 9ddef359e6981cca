// The per-VM translation cache's bookkeeping: units of rewritten pages are dropped by the periodic sweep (their keys
// hold the old generation, so only the sweep or a whole flush frees them), units of untouched pages stay.
using Ringvisor.Emulator.Memory;
using Ringvisor.Emulator.Translation;

namespace Ringvisor.Emulator.Tests.Translation;

public sealed class TranslationCacheTests
{
    private const int Bitness = 64;
    private const int UnitBytes = 100;

    private static TranslatedUnit NewUnit(UnitKey key) =>
        new(key, (_, _, _, _) => 0, instructionCount: 1, estimatedBytes: UnitBytes, sourceStart: 0, source: [0x90], helpers: null);

    [Fact]
    public void SweepStale_PageRewritten_DropsOnlyItsUnits()
    {
        var tracker = new CodePageTracker(1UL << 20);
        var cache = new TranslationCache(1L << 20);
        const ulong CodePage = 3, OtherPage = 4;
        Assert.True(tracker.TryMark(CodePage << 12));
        var stale = NewUnit(new UnitKey(CodePage, tracker.PageGeneration(CodePage), Bitness, 0x10));
        var kept = NewUnit(new UnitKey(OtherPage, tracker.PageGeneration(OtherPage), Bitness, 0x20));
        cache.Add(stale);
        cache.Add(kept);

        tracker.InvalidateRange(CodePage << 12, 1);
        Assert.NotEqual(stale.Key.Generation, tracker.PageGeneration(CodePage));
        cache.SweepStale(tracker);

        Assert.True(stale.Evicted);
        Assert.False(cache.TryGet(stale.Key, out _));
        Assert.False(kept.Evicted);
        Assert.True(cache.TryGet(kept.Key, out var found));
        Assert.Same(kept, found);
        Assert.Equal(1, cache.StaleDropped);
        Assert.Equal(UnitBytes, cache.Bytes);
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
        Assert.Equal(-1, unit.Code(null!, 0, -1, null));
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
        Assert.Equal(-1, unit.Code(null!, 0, -1, null));
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
