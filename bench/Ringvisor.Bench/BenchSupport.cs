// Helpers the guest-level benchmarks (guest, io) share: finding the repository and QEMU, medians of per-run figures,
// and the figure format of their tables.
using System.Globalization;

namespace Ringvisor.Bench;

internal static class BenchSupport
{
    /// <summary>The median of <paramref name="key"/> over the runs that reported it; NaN when none did.</summary>
    public static double Median(List<Dictionary<string, double>> runs, string key)
    {
        var v = runs.Where(r => r.ContainsKey(key)).Select(r => r[key]).Order().ToList();
        return v.Count == 0 ? double.NaN : v.Count % 2 == 1 ? v[v.Count / 2] : (v[(v.Count / 2) - 1] + v[v.Count / 2]) / 2;
    }

    /// <summary>Two decimals, "-" for a figure that was not measured.</summary>
    public static string Fmt(double v) => double.IsNaN(v) ? "-" : v.ToString("F2", CultureInfo.InvariantCulture);

    public static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    public static string FindRepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Ringvisor.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (Ringvisor.slnx)");
    }
}
