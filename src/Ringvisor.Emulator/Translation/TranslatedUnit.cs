// One translated region: its compiled code and what the cache needs to account for and evict it. Holds no reference
// to a vCPU, so a unit dropped from every table is collected with its DynamicMethod.
namespace Ringvisor.Emulator.Translation;

internal sealed class TranslatedUnit
{
    public TranslatedUnit(UnitKey key, UnitCode code, int instructionCount, int estimatedBytes, int sourceStart, byte[] source, Iced.Intel.Instruction[]? helpers, int linkCount = 0)
    {
        Links = new ChainLink?[linkCount + 1];
        LinkUpdates = new byte[linkCount + 1];
        Helpers = helpers;
        Key = key;
        Code = code;
        InstructionCount = instructionCount;
        EstimatedBytes = estimatedBytes;
        SourceStart = sourceStart;
        Source = source;
        RegionEntry = key.EntryOffset;
    }

    /// <summary>The page offset of the region's own entry (a side-entry unit's <see cref="Key"/> names the side entry):
    /// what <see cref="TranslationCache.Demote"/> records.</summary>
    public int RegionEntry { get; private init; }

    /// <summary>Fallback exits taken from this unit in a row, close together (Cpu.RunUnitChain; racy updates from the
    /// vCPUs: only a trigger).</summary>
    public int Fallbacks;

    /// <summary>The instruction count of the vCPU that took the last fallback exit from this unit.</summary>
    public long LastFallback = long.MinValue / 2;

    /// <summary>Compiled for a demoted region: its accesses call the accessor on a TLB miss instead of leaving the unit.</summary>
    public bool CallsOnMiss { get; init; }

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

    /// <summary>The compiled method's entry point (0 where the runtime does not expose it): the dispatcher calls it
    /// directly instead of through <see cref="Code"/> (which keeps the method alive), skipping the delegate's
    /// indirections and its shuffle thunk.</summary>
    public nint Entry { get; init; }

    /// <summary>
    /// The remembered successor per chainable exit (direct branches, fall-through ends, indirect jumps and returns),
    /// indexed by the link number the code returns above its exit reason (<see cref="TranslationExit"/>); slot 0 is
    /// unused (exits that never chain).
    /// </summary>
    public ChainLink?[] Links { get; }

    /// <summary>How often each link was (re)made, saturating: an exit whose target keeps changing (a RET with many
    /// callers) stops being relinked, so the dispatcher does not allocate a link per exit.</summary>
    public byte[] LinkUpdates { get; }

    public int InstructionCount { get; }

    public int EstimatedBytes { get; }

    /// <summary>The next page when the unit's code ends with an instruction crossing into it (<see cref="Source"/> then
    /// runs past the page end by the bytes that instruction takes from it).</summary>
    public CrossingPage? Crossing { get; init; }

    /// <summary>
    /// The same compiled code under a later generation of its page, for when the page was rewritten outside
    /// <see cref="Source"/> (kernel text patching, data sharing a page with code): own links, nothing recompiled. The
    /// code reads its page's generation from the dispatcher (Cpu._unitGeneration), never from a constant, so it serves
    /// any generation whose bytes match.
    /// </summary>
    public TranslatedUnit ForGeneration(int generation) =>
        SameCode(Key with { Generation = generation }, EstimatedBytes, EntryIndex, SideEntries);

    /// <summary>
    /// Page offsets (in the entry page) where the code can also be entered: the unit's joins (branch targets, return
    /// sites after its CALLs, instructions after an unconditional transfer), index i + 1 of the code's entry argument
    /// for SideEntries[i]. Execution arrives there from outside the unit after an exit inside it (a budget or attention
    /// exit on a backward branch resumes at a loop head, a return from a callee outside the unit at its return site, a
    /// fault handler's IRET at the faulting instruction's block): instead of a unit of their own, each of which would
    /// take the rest of this one's code again (1.8 compilations per guest instruction on the benchmark boot), they
    /// enter this code (<see cref="ForSideEntry"/>).
    /// </summary>
    public int[]? SideEntries { get; init; }

    /// <summary>0 for the unit's own entry, else 1 + the index in <see cref="SideEntries"/> it is entered at.</summary>
    public int EntryIndex { get; init; }

    /// <summary>The same code entered at side entry <paramref name="index"/> (0-based in <see cref="SideEntries"/>),
    /// keyed by that offset: own links, no code bytes counted against the cache budget.</summary>
    public TranslatedUnit ForSideEntry(int index) => SameCode(Key with { EntryOffset = SideEntries![index] }, 0, index + 1, null);

    /// <summary>This unit's compiled code under another key, with links of its own.</summary>
    private TranslatedUnit SameCode(UnitKey key, int estimatedBytes, int entryIndex, int[]? sideEntries) =>
        new(key, Code, InstructionCount, estimatedBytes, SourceStart, Source, Helpers, Links.Length - 1)
        {
            Entry = Entry,
            Crossing = Crossing,
            EntryIndex = entryIndex,
            SideEntries = sideEntries,
            RegionEntry = RegionEntry,
            CallsOnMiss = CallsOnMiss,
        };

    /// <summary>Set when the cache dropped the unit; vCPU unit slots and chain links drop their reference on seeing it.</summary>
    public volatile bool Evicted;
}
