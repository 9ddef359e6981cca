// One translated region: its compiled code and what the cache needs to account for and evict it. Holds no reference
// to a vCPU, so a unit dropped from every table is collected with its DynamicMethod.
namespace Ringvisor.Emulator.Translation;

internal sealed class TranslatedUnit
{
    public TranslatedUnit(UnitKey key, UnitCode code, int instructionCount, int estimatedBytes)
    {
        Key = key;
        Code = code;
        InstructionCount = instructionCount;
        EstimatedBytes = estimatedBytes;
    }

    public UnitKey Key { get; }

    public UnitCode Code { get; }

    public int InstructionCount { get; }

    public int EstimatedBytes { get; }

    /// <summary>Set when the cache dropped the unit; vCPU lookup tables drop their reference on seeing it.</summary>
    public volatile bool Evicted;
}
