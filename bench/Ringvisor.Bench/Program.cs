// Ringvisor benchmarks, one subcommand each:
//   dotnet run -c Release --project bench/Ringvisor.Bench -- <benchmark> [options]
// Each benchmark prints its figures and the ratio against the baseline it measures in the same run.
using Ringvisor.Bench.Pio;

var benchmarks = new SortedDictionary<string, (string Description, Func<string[], int> Run)>(StringComparer.Ordinal)
{
    ["pio"] = ("PIO-exit round trips through the kvm engine's KVM_RUN loop vs a minimal C loop", PioBenchmark.Run),
};

if (args.Length == 0 || !benchmarks.TryGetValue(args[0], out var benchmark))
{
    Console.Error.WriteLine("usage: Ringvisor.Bench <benchmark> [options]");
    foreach (var (name, (description, _)) in benchmarks)
    {
        Console.Error.WriteLine($"  {name,-8} {description}");
    }

    return 2;
}

return benchmark.Run(args[1..]);
