// The integer families against the real CPU (KVM at CPL 3), each with a fixed seed so CI runs the same cases.
using Ringvisor.TestSupport;

namespace Ringvisor.Emulator.Tests.Differential;

public sealed class CoreDifferentialTests
{
    [KvmFact]
    public void Shifts_RandomFixedSeed_MatchRealCpu() => Run(ShiftCases.Random(seed: 2, count: 1500));

    [KvmFact]
    public void MulDiv_RandomFixedSeed_MatchRealCpu() => Run(MulDivCases.Random(seed: 3, count: 800));

    [KvmFact]
    public void BitOps_RandomFixedSeed_MatchRealCpu() => Run(BitCases.Random(seed: 4, count: 800));

    [KvmFact]
    public void Conditionals_RandomFixedSeed_MatchRealCpu() => Run(CondCases.Random(seed: 5, count: 800));

    [KvmFact]
    public void Loops_DirectedCounts_MatchRealCpu() => Run(CondCases.DirectedLoops());

    [KvmFact]
    public void DataMovement_RandomFixedSeed_MatchRealCpu() => Run(DataMoveCases.Random(seed: 6, count: 1000));

    [KvmFact]
    public void Strings_RandomFixedSeed_MatchRealCpu() => Run(StringCases.Random(seed: 7, count: 700));

    [KvmFact]
    public void Exceptions_Directed_MatchRealCpu() => Run(ExceptionCases.Directed());

    [KvmFact]
    public void Sse_RandomFixedSeed_MatchRealCpu() => Run(SseCases.Random(seed: 8, count: 1500));

    [KvmFact]
    public void X87_RandomFixedSeed_MatchRealCpu() => Run(X87Cases.Random(seed: 9, count: 400));

    [KvmFact]
    public void Sequences_RandomFixedSeed_MatchRealCpu() => Run(SequenceCases.Random(seed: 10, count: 1000));

    [KvmFact]
    public void Misc_RandomFixedSeed_MatchRealCpu() => Run(MiscCases.Random(seed: 11, count: 400));

    private static void Run(IEnumerable<DiffCase> cases)
    {
        using var r = new DiffRunner();
        r.RunAll(cases);
        r.AssertNoMismatch();
    }
}
