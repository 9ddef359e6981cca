// ALU instructions: the bt interpreter against the real CPU (KVM at CPL 3).
using Ringvisor.TestSupport;

namespace Ringvisor.Emulator.Tests.Differential;

public sealed class AluDifferentialTests
{
    [KvmFact]
    public void Alu_DirectedEdgePairs_MatchRealCpu()
    {
        using var r = new DiffRunner();
        r.RunAll(AluCases.Directed());
        r.AssertNoMismatch();
    }

    [KvmFact]
    public void Alu_RandomFixedSeed_MatchRealCpu()
    {
        using var r = new DiffRunner();
        r.RunAll(AluCases.Random(seed: 1, count: 1500));
        r.AssertNoMismatch();
    }
}
