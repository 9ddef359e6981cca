// One translated region: its compiled code and what the cache needs to account for and evict it. Holds no reference
// to a vCPU, so a unit dropped from every table is collected with its DynamicMethod.
namespace Ringvisor.Emulator.Translation;

internal sealed class TranslatedUnit
{
    public TranslatedUnit(UnitKey key, UnitCode code, int instructionCount, int estimatedBytes, int sourceStart, byte[] source, Iced.Intel.Instruction[]? helpers)
    {
        Helpers = helpers;
        Key = key;
        Code = code;
        InstructionCount = instructionCount;
        EstimatedBytes = estimatedBytes;
        SourceStart = sourceStart;
        Source = source;
    }

    /// <summary>Page offset of <see cref="Source"/>.</summary>
    public int SourceStart { get; }

    /// <summary>
    /// The guest code bytes the unit was translated from (first instruction to end of the last). Compared with memory
    /// when a vCPU takes the unit from the shared cache: RAM rewritten without a code-page notification (a loader or a
    /// snapshot restore followed by SetState, which only drops the vCPU's decoded pages) leaves the generation, and so
    /// the key, unchanged.
    /// </summary>
    public byte[] Source { get; }

    public UnitKey Key { get; }

    /// <summary>Instructions the unit runs through the interpreter (UnitExtra.Helper), indexed by the IL.</summary>
    public Iced.Intel.Instruction[]? Helpers { get; }

    public UnitCode Code { get; }

    public int InstructionCount { get; }

    public int EstimatedBytes { get; }

    /// <summary>Set when the cache dropped the unit; vCPU lookup tables drop their reference on seeing it.</summary>
    public volatile bool Evicted;
}
