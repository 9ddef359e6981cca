// The integer case families again, with the bt engine translating every unit on its first execution (Translation/),
// so each case body runs as translated code as far as the translator covers it and the interpreter takes the rest.
// Same seeds and counts as the interpreter tests (a case that differs only here points at the translator); every case
// is a new code page generation, so a new unit. BT*/BSF/BSR, strings without REP and the common SSE moves/logic run
// as helper calls inside units (the interpreter called from translated code); REP strings and x87 end units.
using Ringvisor.TestSupport;

namespace Ringvisor.Emulator.Tests.Differential;

public sealed class TranslatedDifferentialTests
{
    [KvmFact]
    public void Alu_DirectedEdgePairs_Translated_MatchRealCpu() => Run(AluCases.Directed());

    [KvmFact]
    public void Alu_RandomFixedSeed_Translated_MatchRealCpu() => Run(AluCases.Random(seed: 1, count: 1500));

    [KvmFact]
    public void Shifts_RandomFixedSeed_Translated_MatchRealCpu() => Run(ShiftCases.Random(seed: 2, count: 1500));

    [KvmFact]
    public void MulDiv_RandomFixedSeed_Translated_MatchRealCpu() => Run(MulDivCases.Random(seed: 3, count: 800));

    [KvmFact]
    public void BitOps_RandomFixedSeed_Translated_MatchRealCpu() => Run(BitCases.Random(seed: 4, count: 800));

    [KvmFact]
    public void Strings_RandomFixedSeed_Translated_MatchRealCpu() => Run(StringCases.Random(seed: 7, count: 700));

    [KvmFact]
    public void Sse_RandomFixedSeed_Translated_MatchRealCpu() => Run(SseCases.Random(seed: 8, count: 1500));

    [KvmFact]
    public void Conditionals_RandomFixedSeed_Translated_MatchRealCpu() => Run(CondCases.Random(seed: 5, count: 800));

    [KvmFact]
    public void Loops_DirectedCounts_Translated_MatchRealCpu() => Run(CondCases.DirectedLoops());

    [KvmFact]
    public void DataMovement_RandomFixedSeed_Translated_MatchRealCpu() => Run(DataMoveCases.Random(seed: 6, count: 1000));

    [KvmFact]
    public void Exceptions_Directed_Translated_MatchRealCpu() => Run(ExceptionCases.Directed());

    [KvmFact]
    public void Sequences_RandomFixedSeed_Translated_MatchRealCpu() => Run(SequenceCases.Random(seed: 10, count: 1000));

    [KvmFact]
    public void Misc_RandomFixedSeed_Translated_MatchRealCpu() => Run(MiscCases.Random(seed: 11, count: 400));

    private static void Run(IEnumerable<DiffCase> cases)
    {
        using var r = new DiffRunner(translate: true);
        r.RunAll(cases);
        r.AssertNoMismatch();

        // The mode is only a test of the translator if translated code ran.
        Assert.True(r.TranslatedInstructions > 0, $"no translated instructions in {r.CasesRun} cases");
    }
}
