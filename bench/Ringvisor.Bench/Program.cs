// Ringvisor benchmarks, one subcommand each:
//   dotnet run -c Release --project bench/Ringvisor.Bench -- <benchmark> [options]
// Each benchmark prints its figures and the ratio against the baseline it measures in the same run.
using Ringvisor.Bench.Guest;
using Ringvisor.Bench.Jit;
using Ringvisor.Bench.Mips;
using Ringvisor.Bench.Pio;

var benchmarks = new SortedDictionary<string, (string Description, Func<string[], int> Run)>(StringComparer.Ordinal)
{
    ["guest"] = ("Default guest with rv.bench=1: boot to ready, shell loop, md5sum; Ringvisor (bt) vs QEMU TCG", GuestBenchmark.Run),
    ["io"] = ("virtio-blk sequential write/read and VM-to-VM TCP MiB/s in the default guest; Ringvisor (bt) vs QEMU TCG", Ringvisor.Bench.Io.IoBenchmark.Run),
    ["jit"] = ("bt translator: build + emit + JIT microseconds per unit and IL bytes per guest instruction on synthetic units", JitBenchmark.Run),
    ["mips"] = ("bt interpreter speed on a CPU-bound 64-bit integer loop", MipsBenchmark.Run),
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
