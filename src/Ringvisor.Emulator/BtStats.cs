// Counters the CLI prints at exit with --stats. Updated by vCPU threads with plain adds into per-vCPU slots
// where hot (instructions) and Interlocked where rare.
using System.Collections.Concurrent;
using System.Text;

namespace Ringvisor.Emulator;

public sealed class BtStats
{
    private readonly long[] _exceptions = new long[256];
    private long _instructions;
    private long _pioExits;
    private long _mmioExits;
    private long _haltExits;
    private long _hypercalls;
    private long _undefined;
    private long _tlbHits;
    private long _tlbMisses;
    private long _tlbFlushes;
    private long _tlbInvalidations;
    private long _decodes;
    private long _probes;
    private long _demoted;
    private readonly long[] _translationExits = new long[9];
    private long _decodedPages;
    private long _translatedInstructions;
    private long _unitsTranslated;
    private long _unitInstructions;
    private long _translationTicks;
    private long _translationRejected;
    private long _unitsInvalidated;
    private long _unitsReused;
    private long _cacheBytes;
    private long _cacheFlushes;
    private long _staleUnits;

    // IL emitted for translated units, process-wide (the compiler does not see a VM's stats object): what the JIT's
    // time per unit grows with.
    private static long s_unitIlBytes;
    private static long s_unitIlInstructions;

    public ConcurrentDictionary<string, long> UndefinedMnemonics { get; } = new();

    /// <summary>Mnemonics of interpreted 64-bit instructions, sampled 1 in 64 (what the translator should cover next).</summary>
    public ConcurrentDictionary<string, long> InterpretedMnemonics { get; } = new();

    /// <summary>Mnemonics of instructions translated units ran as helper calls into the interpreter, sampled 1 in 64
    /// (what the translator should emit natively next).</summary>
    public ConcurrentDictionary<string, long> HelperMnemonics { get; } = new();

    public long Instructions => Interlocked.Read(ref _instructions);

    public long PioExits => Interlocked.Read(ref _pioExits);

    public long MmioExits => Interlocked.Read(ref _mmioExits);

    public long HaltExits => Interlocked.Read(ref _haltExits);

    public long Hypercalls => Interlocked.Read(ref _hypercalls);

    public long UndefinedInstructions => Interlocked.Read(ref _undefined);

    public long TlbHits => Interlocked.Read(ref _tlbHits);

    public long TlbMisses => Interlocked.Read(ref _tlbMisses);

    /// <summary>TLB flushes (CR3 loads, CR4/mode changes) and single-page invalidations (INVLPG) of all vCPUs.</summary>
    public long TlbFlushes => Interlocked.Read(ref _tlbFlushes);

    public long TlbInvalidations => Interlocked.Read(ref _tlbInvalidations);

    public long Decodes => Interlocked.Read(ref _decodes);

    /// <summary>The translator's probes for a unit at RIP before an interpreted instruction (block leaders only) and
    /// at unit exits the links and the jump cache did not resolve.</summary>
    public long UnitProbes => Interlocked.Read(ref _probes);

    /// <summary>Instructions executed by translated code (the rest were interpreted).</summary>
    public long TranslatedInstructions => Interlocked.Read(ref _translatedInstructions);

    public long UnitsTranslated => Interlocked.Read(ref _unitsTranslated);

    /// <summary>Guest instructions compiled into units (an instruction in two units counts twice).</summary>
    public long UnitInstructions => Interlocked.Read(ref _unitInstructions);

    /// <summary>Hot entries where no unit could be built (the first instruction is not translatable).</summary>
    public long TranslationRejected => Interlocked.Read(ref _translationRejected);

    /// <summary>Units found stale at entry (their code page was written or remapped) or evicted.</summary>
    public long UnitsInvalidated => Interlocked.Read(ref _unitsInvalidated);

    public long TranslationCacheBytes => Interlocked.Read(ref _cacheBytes);

    public long TranslationCacheFlushes => Interlocked.Read(ref _cacheFlushes);

    /// <summary>Units the cache dropped because their page was rewritten after translation.</summary>
    public long StaleUnitsDropped => Interlocked.Read(ref _staleUnits);

    /// <summary>IL bytes of all units compiled in this process (every VM), and their guest instructions.</summary>
    public static (long IlBytes, long Instructions) UnitIl => (Interlocked.Read(ref s_unitIlBytes), Interlocked.Read(ref s_unitIlInstructions));

    internal static void UnitIlEmitted(int ilBytes, int instructions)
    {
        Interlocked.Add(ref s_unitIlBytes, ilBytes);
        Interlocked.Add(ref s_unitIlInstructions, instructions);
    }

    internal void SetStaleUnitsDropped(long n) => Interlocked.Exchange(ref _staleUnits, n);

    /// <summary>Time spent building, emitting and JIT-compiling units.</summary>
    public TimeSpan TranslationTime => TimeSpan.FromTicks(Interlocked.Read(ref _translationTicks) * TimeSpan.TicksPerSecond / System.Diagnostics.Stopwatch.Frequency);

    /// <summary>Unit exits by reason (Translation.TranslationExit order).</summary>
    public long TranslationExits(int reason) => Interlocked.Read(ref _translationExits[reason]);

    public long ExceptionCount(int vector) => Interlocked.Read(ref _exceptions[vector & 0xFF]);

    internal void AddInstructions(long n) => Interlocked.Add(ref _instructions, n);

    internal void AddTlb(long hits, long misses, long flushes, long invalidations)
    {
        Interlocked.Add(ref _tlbHits, hits);
        Interlocked.Add(ref _tlbMisses, misses);
        Interlocked.Add(ref _tlbFlushes, flushes);
        Interlocked.Add(ref _tlbInvalidations, invalidations);
    }

    internal void AddDecodes(long n) => Interlocked.Add(ref _decodes, n);

    internal void AddUnitProbes(long n) => Interlocked.Add(ref _probes, n);

    /// <summary>Regions compiled again with accesses that call the accessor on a TLB miss (TranslationCache.Demote).</summary>
    public long UnitsDemoted => Interlocked.Read(ref _demoted);

    internal void UnitDemoted() => Interlocked.Increment(ref _demoted);

    /// <summary>Decoded code pages a vCPU holds now (the largest of the vCPUs' latest reports).</summary>
    public long DecodedPages => Interlocked.Read(ref _decodedPages);

    internal void ReportDecodedPages(int pages)
    {
        long cur;
        while (pages > (cur = Interlocked.Read(ref _decodedPages)) && Interlocked.CompareExchange(ref _decodedPages, pages, cur) != cur)
        {
        }
    }

    internal void AddTranslated(long instructions, ReadOnlySpan<long> exits)
    {
        Interlocked.Add(ref _translatedInstructions, instructions);
        for (int i = 0; i < exits.Length && i < _translationExits.Length; i++)
        {
            if (exits[i] != 0)
            {
                Interlocked.Add(ref _translationExits[i], exits[i]);
            }
        }
    }

    internal void UnitTranslated(int instructions, long stopwatchTicks, long cacheBytes, long cacheFlushes)
    {
        Interlocked.Increment(ref _unitsTranslated);
        Interlocked.Add(ref _unitInstructions, instructions);
        Interlocked.Add(ref _translationTicks, stopwatchTicks);
        Interlocked.Exchange(ref _cacheBytes, cacheBytes);
        Interlocked.Exchange(ref _cacheFlushes, cacheFlushes);
    }

    internal void TranslationRejectedOnce() => Interlocked.Increment(ref _translationRejected);

    internal void UnitInvalidated() => Interlocked.Increment(ref _unitsInvalidated);

    internal void UnitReused() => Interlocked.Increment(ref _unitsReused);

    /// <summary>Units taken over for a rewritten page whose bytes under them did not change (no recompilation).</summary>
    public long UnitsReused => Interlocked.Read(ref _unitsReused);

    internal void Exception(int vector) => Interlocked.Increment(ref _exceptions[vector & 0xFF]);

    internal void Pio() => Interlocked.Increment(ref _pioExits);

    internal void Mmio() => Interlocked.Increment(ref _mmioExits);

    internal void Halt() => Interlocked.Increment(ref _haltExits);

    internal void Hypercall() => Interlocked.Increment(ref _hypercalls);

    internal void Undefined(string mnemonic)
    {
        Interlocked.Increment(ref _undefined);
        UndefinedMnemonics.AddOrUpdate(mnemonic, 1, (_, v) => v + 1);
    }

    /// <summary>A human-readable report.</summary>
    public string Format()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"instructions executed: {Instructions}");
        sb.AppendLine($"instructions decoded:  {Decodes} (peak decoded pages held by a vCPU: {DecodedPages})");
        sb.AppendLine($"TLB hits/misses:       {TlbHits}/{TlbMisses}, {TlbFlushes} flushes, {TlbInvalidations} INVLPGs");
        long translated = TranslatedInstructions;
        sb.AppendLine($"translated tier:       {translated} instructions ({(Instructions > 0 ? 100.0 * translated / Instructions : 0):F1}%), interpreted {Instructions - translated}; {UnitProbes} probes for a unit");
        sb.AppendLine($"units:                 {UnitsTranslated} translated ({Interlocked.Read(ref _unitInstructions)} instructions, {TranslationTime.TotalMilliseconds:F0} ms to build, emit and JIT), {TranslationRejected} rejected, {UnitsInvalidated} invalidated, {UnitsReused} reused after a rewrite, {UnitsDemoted} demoted to calls on a TLB miss");
        var (ilBytes, ilInstructions) = UnitIl;
        sb.AppendLine($"unit IL:               {ilBytes / 1024} KiB for {ilInstructions} guest instructions ({(ilInstructions > 0 ? (double)ilBytes / ilInstructions : 0):F1} bytes each; all VMs of the process)");
        sb.AppendLine($"translation cache:     {TranslationCacheBytes / 1024} KiB estimated, {TranslationCacheFlushes} flushes, {StaleUnitsDropped} stale units dropped");

        // Where the process's memory beyond guest RAM goes: the managed heap (units' DynamicMethod graphs, decoded
        // pages) against JIT-compiled code, which the runtime keeps outside it.
        // (Only with --stats: a full collection here tells live objects from garbage not yet collected.)
        var gc = GC.GetGCMemoryInfo();
        long live = GC.GetTotalMemory(forceFullCollection: true);
        sb.AppendLine($"host memory:           managed heap {gc.HeapSizeBytes >> 20} MiB (committed {gc.TotalCommittedBytes >> 20} MiB, live {live >> 20} MiB), JIT-compiled code {System.Runtime.JitInfo.GetCompiledILBytes() >> 10} KiB of IL in {System.Runtime.JitInfo.GetCompiledMethodCount()} methods");
        sb.AppendLine($"unit exits:            end {TranslationExits(0)}, branch {TranslationExits(1)}, indirect {TranslationExits(2)}, budget {TranslationExits(3)}, fault {TranslationExits(4)}, store {TranslationExits(5)}, fallback {TranslationExits(6)}; of these chained {TranslationExits(7)}, through the jump cache {TranslationExits(8)}");
        sb.AppendLine($"exits: PIO {PioExits}, MMIO {MmioExits}, HLT {HaltExits}, hypercall {Hypercalls}");
        for (int v = 0; v < 256; v++)
        {
            long n = ExceptionCount(v);
            if (n != 0)
            {
                sb.AppendLine($"exception/interrupt vector {v}: {n}");
            }
        }

        if (!InterpretedMnemonics.IsEmpty)
        {
            sb.AppendLine("interpreted 64-bit instructions (1 in 64 sampled):");
            foreach (var kv in InterpretedMnemonics.OrderByDescending(k => k.Value).Take(25))
            {
                sb.AppendLine($"  {kv.Key}: {kv.Value}");
            }
        }

        if (!HelperMnemonics.IsEmpty)
        {
            sb.AppendLine("helper calls from translated code (1 in 64 sampled):");
            foreach (var kv in HelperMnemonics.OrderByDescending(k => k.Value).Take(15))
            {
                sb.AppendLine($"  {kv.Key}: {kv.Value}");
            }
        }

        sb.AppendLine($"#UD for unimplemented instructions: {UndefinedInstructions}");
        foreach (var kv in UndefinedMnemonics.OrderByDescending(k => k.Value).Take(10))
        {
            sb.AppendLine($"  {kv.Key}: {kv.Value}");
        }

        return sb.ToString();
    }
}
