// Options of the bt engine (debugging aids and the hypercall console).
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
}
