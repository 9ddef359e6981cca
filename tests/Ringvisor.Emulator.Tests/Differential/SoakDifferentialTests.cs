// Soak mode: random cases from every family with a random (printed) seed for RINGVISOR_DIFF_SOAK seconds.
// Replay a failing run with RINGVISOR_DIFF_SEED=<seed>, or a single case from its printed origin.
// RINGVISOR_DIFF_TRANSLATE=1 runs the bt side with translation forced (every unit translated on first execution).
using Xunit.Abstractions;

namespace Ringvisor.Emulator.Tests.Differential;

public sealed class SoakDifferentialTests(ITestOutputHelper output)
{
    private const int CasesPerRound = 200;

    [DiffSoakFact]
    public void Soak_RandomSeed_MatchRealCpu()
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("RINGVISOR_DIFF_SEED"), out int s) ? s : Random.Shared.Next();
        bool translate = Environment.GetEnvironmentVariable("RINGVISOR_DIFF_TRANSLATE") == "1";
        output.WriteLine($"differential soak: seed {seed}, {DiffSoakFactAttribute.Seconds} s{(translate ? ", translated" : string.Empty)}");
        var deadline = DateTime.UtcNow.AddSeconds(DiffSoakFactAttribute.Seconds);
        using var runner = new DiffRunner(translate: translate);
        int round = 0;
        var counts = new Dictionary<string, int>();
        while (DateTime.UtcNow < deadline && runner.Mismatches.Count < 20)
        {
            var (name, random) = DiffFamilies.All[round % DiffFamilies.All.Count];
            int familySeed = unchecked(seed + (round * 7919));
            runner.RunAll(random(familySeed, CasesPerRound));
            counts[name] = counts.GetValueOrDefault(name) + CasesPerRound;
            round++;
        }

        output.WriteLine($"{runner.CasesRun} cases ({string.Join(", ", counts.Select(kv => $"{kv.Key} {kv.Value}"))}), {runner.Mismatches.Count} mismatches");
        if (runner.Mismatches.Count > 0)
        {
            output.WriteLine($"replay with RINGVISOR_DIFF_SEED={seed}");
        }

        runner.AssertNoMismatch(context: $"soak seed {seed} (replay with RINGVISOR_DIFF_SEED={seed})");
    }
}
