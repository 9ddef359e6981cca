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
    private long _decodes;

    public ConcurrentDictionary<string, long> UndefinedMnemonics { get; } = new();

    public long Instructions => Interlocked.Read(ref _instructions);

    public long PioExits => Interlocked.Read(ref _pioExits);

    public long MmioExits => Interlocked.Read(ref _mmioExits);

    public long HaltExits => Interlocked.Read(ref _haltExits);

    public long Hypercalls => Interlocked.Read(ref _hypercalls);

    public long UndefinedInstructions => Interlocked.Read(ref _undefined);

    public long TlbHits => Interlocked.Read(ref _tlbHits);

    public long TlbMisses => Interlocked.Read(ref _tlbMisses);

    public long Decodes => Interlocked.Read(ref _decodes);

    public long ExceptionCount(int vector) => Interlocked.Read(ref _exceptions[vector & 0xFF]);

    internal void AddInstructions(long n) => Interlocked.Add(ref _instructions, n);

    internal void AddTlb(long hits, long misses)
    {
        Interlocked.Add(ref _tlbHits, hits);
        Interlocked.Add(ref _tlbMisses, misses);
    }

    internal void AddDecodes(long n) => Interlocked.Add(ref _decodes, n);

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
        sb.AppendLine($"instructions decoded:  {Decodes}");
        sb.AppendLine($"TLB hits/misses:       {TlbHits}/{TlbMisses}");
        sb.AppendLine($"exits: PIO {PioExits}, MMIO {MmioExits}, HLT {HaltExits}, hypercall {Hypercalls}");
        for (int v = 0; v < 256; v++)
        {
            long n = ExceptionCount(v);
            if (n != 0)
            {
                sb.AppendLine($"exception/interrupt vector {v}: {n}");
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
