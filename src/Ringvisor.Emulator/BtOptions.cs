// Options of the bt engine (debugging aids, the hypercall console, the translator).
namespace Ringvisor.Emulator;

public sealed class BtOptions
{
    /// <summary>When set, vCPU 0 writes an instruction and exception trace to this file.</summary>
    public string? TracePath { get; init; }

    /// <summary>Count executed instructions, exceptions and exits (printed by the CLI at exit).</summary>
    public bool CollectStats { get; init; }

    /// <summary>Where the 'write to console' hypercall sends its bytes (e.g. COM1's output); null drops them.</summary>
    public Action<ReadOnlySpan<byte>>? ConsoleSink { get; init; }

    /// <summary>Instructions executed between checks for kicks and pending interrupts.</summary>
    public int BatchSize { get; init; } = 4096;

    /// <summary>
    /// Translate hot 64-bit guest code to IL (Translation/); the interpreter stays the cold tier. The environment variable
    /// RINGVISOR_BT_TRANSLATE=0 turns it off whatever this says.
    /// </summary>
    public bool Translation { get; init; } = true;

    /// <summary>Executions of an instruction by the interpreter before a unit is translated starting there (0 or 1:
    /// translate on first execution, as the differential tests do). 500 since side entries made each compilation take
    /// less code (Translation/README.md, round 8: md5 phase -17% against 1,000, boot within noise).</summary>
    public int TranslationThreshold { get; init; } = 500;

    /// <summary>Compile units on a worker thread while the vCPU keeps interpreting (on by default: the benchmark boot
    /// is ~30% faster on the 2-core host, see Translation/README.md; off, a vCPU compiles its units itself, which is
    /// deterministic and what the translator's directed tests use). RINGVISOR_BT_BACKGROUND=1/0 overrides this.</summary>
    public bool BackgroundTranslation { get; init; } = true;

    /// <summary>Let a unit's region continue into other pages through direct calls and jumps, and come back from a
    /// callee through its RET (traces; Translation/README.md). RINGVISOR_BT_TRACES=0/1 overrides this.</summary>
    public bool Traces { get; init; }

    /// <summary>
    /// A debugging aid: before every unit runs, check that guest memory still holds the code bytes it was translated
    /// from and that RIP is at its entry in the page it was translated for; a unit that fails (an invalidation that did
    /// not happen) stops the vCPU with an internal error naming it, instead of running code the guest no longer has.
    /// Costs a compare of the unit's bytes per unit entered. RINGVISOR_BT_VERIFY=1 turns it on.
    /// </summary>
    public bool VerifyUnits { get; init; }

    /// <summary>Estimated size of translated code kept per VM; the cache is flushed when a new unit would exceed it.</summary>
    public long TranslationBudgetBytes { get; init; } = 32L << 20;
}
