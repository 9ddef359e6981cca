// Boots the default guest with rv.bench=1 (docs/guest-image.md) under Ringvisor's bt engine and, when installed,
// under QEMU TCG with the same kernel, initramfs, memory and one vCPU, alternating runs; prints the median wall
// time per phase and the ratio Ringvisor/QEMU, plus peak RSS of each VMM.
//   ready: process start → "ringvisor: guest ready";  loop: 20,000-iteration shell loop;  md5: md5sum of 16 MiB.
// Phase times are host wall-clock times between the guest's console markers, taken as the lines arrive.
using System.Diagnostics;
using System.Globalization;
using Ringvisor.Machine.Images;

namespace Ringvisor.Bench.Guest;

internal static class GuestBenchmark
{
    private static readonly string[] s_phases = ["ready", "loop", "md5"];

    public static int Run(string[] args)
    {
        int runs = 3;
        bool withQemu = true;
        int cpus = 1;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--runs" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out int r) && r > 0:
                    runs = r;
                    i++;
                    break;
                case "--cpus" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out int c) && c > 0:
                    cpus = c;
                    i++;
                    break;
                case "--no-qemu":
                    withQemu = false;
                    break;
                default:
                    Console.Error.WriteLine("usage: guest [--runs N] [--cpus N] [--no-qemu]");
                    return 2;
            }
        }

        var image = DefaultGuestImage.EnsureBuilt(null);
        string repo = BenchSupport.FindRepositoryRoot();
        string launcher = Path.Combine(repo, "ringvisor");
        string append = $"{image.DefaultCommandLine} rv.bench=1";
        string? qemu = withQemu ? BenchSupport.FindOnPath("qemu-system-x86_64") : null;

        // Build once outside the timed runs.
        RunToEnd(launcher, ["--help"], TimeSpan.FromMinutes(10), out _);

        // The launcher's build leaves the compiler server running, and it kept a core busy into the first timed run
        // (a first boot measured 3.97 s against 2.24-2.40 for the next four). It restarts on demand.
        RunToEnd("dotnet", ["build-server", "shutdown"], TimeSpan.FromMinutes(2), out _);

        var rv = new List<Dictionary<string, double>>();
        var qm = new List<Dictionary<string, double>>();
        for (int i = 0; i < runs; i++)
        {
            rv.Add(Measure("ringvisor", launcher, ["run", "--engine", "bt", "--memory", "256M", "--cpus", cpus.ToString(CultureInfo.InvariantCulture), "--append", append]));
            if (qemu is not null)
            {
                qm.Add(Measure("qemu", qemu,
                [
                    "-accel", "tcg", "-M", "pc", "-m", "256", "-smp", cpus.ToString(CultureInfo.InvariantCulture), "-kernel", image.Kernel,
                    "-initrd", image.Initrd, "-append", append, "-display", "none", "-serial", "stdio", "-no-reboot", "-nodefaults",
                ]));
            }
        }

        Console.WriteLine();
        Console.WriteLine($"default guest, rv.bench=1, {runs} run(s) each, median wall seconds ({cpus} vCPU)");
        Console.WriteLine($"{"phase",-8} {"ringvisor",10} {"qemu-tcg",10} {"ratio",8}");
        foreach (var p in s_phases.Append("peakRssMiB"))
        {
            double a = BenchSupport.Median(rv, p);
            double b = qm.Count > 0 ? BenchSupport.Median(qm, p) : double.NaN;
            string ratio = double.IsNaN(b) || b == 0 ? "-" : (a / b).ToString("F2", CultureInfo.InvariantCulture);
            Console.WriteLine($"{p,-8} {BenchSupport.Fmt(a),10} {BenchSupport.Fmt(b),10} {ratio,8}");
        }

        if (qemu is null && withQemu)
        {
            Console.WriteLine("qemu-system-x86_64 not found: install qemu-system-x86 for the comparison");
        }

        return 0;
    }

    private static Dictionary<string, double> Measure(string label, string exe, string[] args)
    {
        var result = new Dictionary<string, double>();
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardInput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        _ = p.StandardError.ReadToEndAsync();
        long peakRss = 0;
        using var rssTimer = new Timer(_ =>
        {
            try
            {
                p.Refresh();
                peakRss = Math.Max(peakRss, p.PeakWorkingSet64);
            }
            catch (InvalidOperationException)
            {
            }
        }, null, 0, 100);
        var marks = new Dictionary<string, double>();
        string? line;
        while ((line = p.StandardOutput.ReadLine()) is not null)
        {
            double t = sw.Elapsed.TotalSeconds;
            if (line.Contains("ringvisor: guest ready", StringComparison.Ordinal))
            {
                marks["ready"] = t;
            }
            else if (line.Contains("rv-bench: ", StringComparison.Ordinal))
            {
                foreach (var key in new[] { "loop start", "loop end", "md5 start", "md5 end" })
                {
                    if (line.Contains("rv-bench: " + key, StringComparison.Ordinal))
                    {
                        marks[key] = t;
                    }
                }
            }

            if (marks.ContainsKey("md5 end"))
            {
                break;
            }
        }

        if (!p.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
        }

        if (marks.TryGetValue("ready", out double ready))
        {
            result["ready"] = ready;
        }

        if (marks.TryGetValue("loop start", out double ls) && marks.TryGetValue("loop end", out double le))
        {
            result["loop"] = le - ls;
        }

        if (marks.TryGetValue("md5 start", out double ms) && marks.TryGetValue("md5 end", out double me))
        {
            result["md5"] = me - ms;
        }

        result["peakRssMiB"] = peakRss / (1024.0 * 1024.0);
        Console.WriteLine($"{label}: " + string.Join("  ", result.Select(kv => $"{kv.Key}={kv.Value:F2}")));
        return result;
    }

    private static void RunToEnd(string exe, string[] args, TimeSpan limit, out int status)
    {
        var psi = new ProcessStartInfo(exe) { UseShellExecute = false, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        p.StandardOutput.ReadToEnd();
        p.WaitForExit(limit);
        status = p.HasExited ? p.ExitCode : -1;
    }
}
