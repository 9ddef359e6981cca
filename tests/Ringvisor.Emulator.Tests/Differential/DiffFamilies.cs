// The random case families, by name, for the soak mode (and anyone who wants to replay a reported case: the origin
// printed with a mismatch is "Family.Random(seed) #index", i.e. the index-th case of Random(seed, index + 1)).
namespace Ringvisor.Emulator.Tests.Differential;

internal static class DiffFamilies
{
    public static IReadOnlyList<(string Name, Func<int, int, IEnumerable<DiffCase>> Random)> All { get; } =
    [
        ("alu", AluCases.Random),
        ("shift", ShiftCases.Random),
        ("muldiv", MulDivCases.Random),
        ("bit", BitCases.Random),
        ("cond", CondCases.Random),
        ("move", DataMoveCases.Random),
        ("string", StringCases.Random),
        ("sse", SseCases.Random),
        ("x87", X87Cases.Random),
        ("sequence", SequenceCases.Random),
        ("misc", MiscCases.Random),
    ];
}
