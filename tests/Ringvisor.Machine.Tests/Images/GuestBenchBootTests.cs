using System.Globalization;
using System.Text.RegularExpressions;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

/// <summary>rv.bench=1 on the default image under QEMU (a separate class so xUnit can run the boots in parallel).</summary>
public sealed class GuestBenchBootTests
{
    private static readonly TimeSpan s_bootTimeout = TimeSpan.FromSeconds(120);

    [QemuBootFact]
    public void Boot_RvBench_PrintsPhaseMarkersWithNondecreasingUptimesAndPowersOff()
    {
        var image = DefaultGuestImage.EnsureBuilt(null);

        using var guest = QemuGuest.Start(image, $"{image.DefaultCommandLine} rv.bench=1", []);

        Assert.True(guest.WaitForExit(s_bootTimeout, out int rc), "guest did not power off:\n" + guest.Output);
        Assert.Equal(0, rc);
        var markers = Regex.Matches(guest.Output, @"rv-bench: (ready|loop start|loop end|md5 start|md5 end) ([0-9]+\.[0-9]+)")
            .Select(m => (Phase: m.Groups[1].Value, Uptime: double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)))
            .ToList();
        Assert.Equal(["ready", "loop start", "loop end", "md5 start", "md5 end"], markers.Select(m => m.Phase));
        for (int i = 1; i < markers.Count; i++)
        {
            Assert.True(markers[i].Uptime >= markers[i - 1].Uptime, $"uptime went backwards: {guest.Output}");
        }

        // md5 of 16 MiB of zeros, computed here rather than copied from a run (a checksum, not security).
#pragma warning disable CA5351
        string expected = Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(new byte[16 << 20]));
#pragma warning restore CA5351
        Assert.Contains($"{expected}  -", guest.Output, StringComparison.Ordinal);
    }
}
