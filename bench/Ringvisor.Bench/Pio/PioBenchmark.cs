// `pio`: how fast a PIO exit makes the round trip guest -> KVM -> user space -> guest.
// Managed: KvmEngine/KvmVcpu.Run dispatching each `out` to a device on the IoBus (the machine's real path).
// Baseline: bench/native/pio_loop.c, compiled here with `cc -O2`, running the same guest image and entry state.
// Reports, per side, the minimum and median over the rounds of the wall time per exit and of the vCPU thread's CPU
// time per exit (which includes KVM_RUN's time in the kernel and guest, but not waiting for a core), and the ratios
// C#/C (target: <= 1.10). On a loaded machine the CPU-time ratio is the steadier figure.
// --cpl 3 (default) runs the loop at CPL 3 with IOPL = 3 after a 6-instruction CPL-0 stub; --cpl 0 runs the loop
// itself at CPL 0 (on hosts where KVM emulates CPL 0 that is a different, emulated cost).
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using Ringvisor.Bench.Native;
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;
using Ringvisor.Kvm;

namespace Ringvisor.Bench.Pio;

internal static class PioBenchmark
{
    private const string NativeSource = "bench/native/pio_loop.c";
    private const int WarmUpIterations = 200_000;

    public static int Run(string[] args)
    {
        int iterations = 1_000_000;
        int rounds = 3;
        int cpl = 3;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--iterations" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out int n) && n > 0:
                    iterations = n;
                    i++;
                    break;
                case "--rounds" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out int r) && r > 0:
                    rounds = r;
                    i++;
                    break;
                case "--cpl" when i + 1 < args.Length && args[i + 1] is "0" or "3":
                    cpl = args[i + 1][0] - '0';
                    i++;
                    break;
                default:
                    Console.Error.WriteLine("usage: pio [--iterations N (default 1000000)] [--rounds R (default 3)] [--cpl 3|0 (default 3)]");
                    return 2;
            }
        }

        try
        {
            return Measure(iterations, rounds, cpl);
        }
        catch (KvmUnavailableException e)
        {
            Console.Error.WriteLine($"pio: {e.Message}");
            return 1;
        }
    }

    private static int Measure(int iterations, int rounds, int cpl)
    {
        Console.WriteLine($"pio: {iterations:N0} PIO exits per run from a CPL-{cpl} loop, {rounds} round(s)");

        string? native = BuildNative(out string? nativeWhy);
        string? imagePath = null;
        if (native is not null)
        {
            imagePath = Path.Combine(Path.GetDirectoryName(native)!, "pio-guest.img");
            File.WriteAllBytes(imagePath, PioGuest.BuildImage(iterations));
        }

        // Warm-up: let tiered compilation settle on the Run loop and the bus dispatch before timing.
        _ = RunManaged(WarmUpIterations, cpl);

        var managedWall = new List<double>();
        var managedCpu = new List<double>();
        var nativeWall = new List<double>();
        var nativeCpu = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            var (wall, cpu) = RunManaged(iterations, cpl);
            managedWall.Add(wall);
            managedCpu.Add(cpu);
            if (native is not null)
            {
                (wall, cpu) = RunNative(native, imagePath!, iterations, cpl);
                nativeWall.Add(wall);
                nativeCpu.Add(cpu);
            }
        }

        Report("C#  KvmVcpu.Run + IoBus  wall", managedWall);
        Report("C#  KvmVcpu.Run + IoBus  cpu ", managedCpu);
        if (native is null)
        {
            Console.WriteLine($"  C   pio_loop.c               : skipped ({nativeWhy})");
            return 0;
        }

        Report("C   pio_loop.c (cc -O2)  wall", nativeWall);
        Report("C   pio_loop.c (cc -O2)  cpu ", nativeCpu);
        Console.WriteLine($"  ratio C#/C, wall time per exit: min {managedWall.Min() / nativeWall.Min():F3}, median {Median(managedWall) / Median(nativeWall):F3}   (target <= 1.10)");
        Console.WriteLine($"  ratio C#/C, CPU time per exit:  min {managedCpu.Min() / nativeCpu.Min():F3}, median {Median(managedCpu) / Median(nativeCpu):F3}   (target <= 1.10)");
        return 0;
    }

    private static void Report(string label, List<double> nsPerExit)
    {
        double min = nsPerExit.Min(), median = Median(nsPerExit);
        string all = string.Join(", ", nsPerExit.Select(x => (x / 1000).ToString("F3", CultureInfo.InvariantCulture)));
        Console.WriteLine($"  {label}: min {min / 1000:F3} us/exit ({1e9 / min:N0}/s), median {median / 1000:F3} us/exit   (rounds: {all})");
    }

    /// <returns>Wall and vCPU-thread CPU nanoseconds per PIO exit.</returns>
    private static (double Wall, double Cpu) RunManaged(int iterations, int cpl)
    {
        using var memory = GuestMemory.Create(PioGuest.MemorySize);
        if (memory.Write(0, PioGuest.BuildImage(iterations)) != MemoryAccessResult.Ok)
        {
            throw new InvalidOperationException("the PIO guest image does not fit in guest memory");
        }

        var pio = new IoBus("pio", 0x1_0000);
        var counter = new CountingPortDevice();
        var done = new DonePortDevice();
        pio.Register(PioGuest.BenchPort, 1, counter, "bench");
        pio.Register(PioGuest.DonePort, 1, done, "done");
        var control = new BenchVmControl();
        using var engine = new KvmEngine(new EngineContext
        {
            Memory = memory,
            Pio = pio,
            Mmio = new IoBus("mmio", 1UL << 52),
            Control = control,
            VcpuCount = 1,
        });
        var vcpu = engine.CreateVcpu(0);
        done.Vcpu = vcpu;
        vcpu.SetState(PioGuest.EntryState(cpl));

        long cpu0 = ThreadClock.NowNanoseconds();
        var sw = Stopwatch.StartNew();
        while (!done.Done)
        {
            var exit = vcpu.Run();
            if (exit.Reason != VcpuExitReason.Kicked)
            {
                throw new InvalidOperationException($"pio guest stopped unexpectedly: {exit.Reason} {exit.Detail}");
            }
        }

        sw.Stop();
        long cpu = ThreadClock.NowNanoseconds() - cpu0;
        if (counter.Count != iterations)
        {
            throw new InvalidOperationException($"pio guest made {counter.Count} exits, expected {iterations}");
        }

        return (sw.Elapsed.TotalNanoseconds / iterations, (double)cpu / iterations);
    }

    /// <returns>Wall and CPU nanoseconds per PIO exit as measured by pio_loop.c.</returns>
    private static (double Wall, double Cpu) RunNative(string exe, string imagePath, int iterations, int cpl)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(imagePath);
        foreach (string a in PioGuest.NativeArguments(cpl))
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"pio_loop failed ({p.ExitCode}): {stderr.Trim()}");
        }

        // "exits=N ns=T cpu_ns=C"
        long exits = 0, ns = 0, cpuNs = 0;
        foreach (string field in stdout.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries))
        {
            if (field.StartsWith("exits=", StringComparison.Ordinal))
            {
                exits = long.Parse(field[6..], CultureInfo.InvariantCulture);
            }
            else if (field.StartsWith("ns=", StringComparison.Ordinal))
            {
                ns = long.Parse(field[3..], CultureInfo.InvariantCulture);
            }
            else if (field.StartsWith("cpu_ns=", StringComparison.Ordinal))
            {
                cpuNs = long.Parse(field[7..], CultureInfo.InvariantCulture);
            }
        }

        if (exits != iterations || ns <= 0 || cpuNs <= 0)
        {
            throw new InvalidOperationException($"pio_loop reported '{stdout.Trim()}', expected {iterations} exits");
        }

        return ((double)ns / exits, (double)cpuNs / exits);
    }

    /// <summary>Compiles pio_loop.c into bench/out; null (with the reason) when the source or a C compiler is missing.</summary>
    private static string? BuildNative(out string? why)
    {
        string? root = FindRepositoryRoot();
        if (root is null)
        {
            why = $"{NativeSource} not found above {Environment.CurrentDirectory} or {AppContext.BaseDirectory}";
            return null;
        }

        string outDir = Path.Combine(root, "bench", "out");
        Directory.CreateDirectory(outDir);
        string exe = Path.Combine(outDir, "pio_loop");
        var psi = new ProcessStartInfo("cc") { RedirectStandardError = true };
        foreach (string a in new[] { "-O2", "-o", exe, Path.Combine(root, NativeSource) })
        {
            psi.ArgumentList.Add(a);
        }

        try
        {
            using var p = Process.Start(psi)!;
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0)
            {
                why = $"cc failed: {err.Trim()}";
                return null;
            }
        }
        catch (Win32Exception)
        {
            why = "no C compiler (cc) on PATH";
            return null;
        }

        why = null;
        return exe;
    }

    private static string? FindRepositoryRoot()
    {
        foreach (string start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, NativeSource)))
                {
                    return dir.FullName;
                }
            }
        }

        return null;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
