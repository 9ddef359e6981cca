using System.Globalization;
using System.Text.RegularExpressions;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

/// <summary>The built image boots on a reference VMM (QEMU TCG) and /init behaves as documented.</summary>
public sealed class DefaultGuestImageBootTests
{
    // TCG boots this kernel in about 2 s on an idle 2-core machine; the bound only stops a hung guest.
    private static readonly TimeSpan s_bootTimeout = TimeSpan.FromSeconds(120);

    [QemuBootFact]
    public void Boot_RvInitFromExt4Disk_LoadsVirtioModulesConfiguresEth0RunsScriptAndPowersOff()
    {
        var image = DefaultGuestImage.EnsureBuilt(null);
        string dir = Directory.CreateTempSubdirectory("rv-boot-").FullName;
        try
        {
            string disk = Path.Combine(dir, "disk.img");
            DiskImage.CreateExt4(disk, 8, new Dictionary<string, byte[]>
            {
                ["check.sh"] = DiskImage.TextFile("""
                    #!/bin/sh
                    echo "check: running from $0"
                    for m in virtio_pci virtio_blk virtio_net virtio_console virtio_rng; do
                        grep -q "^$m " /proc/modules && echo "check: module $m"
                    done
                    ip -4 addr show dev eth0 | grep -o 'inet [0-9./]*' | sed 's/^/check: /'
                    echo "check: cmdline $(cat /proc/cmdline)"
                    exit 3
                    """),
            });

            using var guest = QemuGuest.Start(image, $"{image.DefaultCommandLine} rv.ip=10.0.2.15/24 rv.init=/mnt/vda/check.sh",
            [
                "-drive", $"file={disk},if=virtio,format=raw",
                "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
                "-device", "virtio-rng-pci", "-device", "virtio-serial-pci",
            ]);

            Assert.True(guest.WaitForExit(s_bootTimeout, out int rc), "guest did not power off:\n" + guest.Output);
            string output = guest.Output;
            Assert.Equal(0, rc);
            Assert.Contains(InitScript.ReadyLine + "\n", output.Replace("\r", "", StringComparison.Ordinal), StringComparison.Ordinal);
            Assert.Contains("check: running from /mnt/vda/check.sh", output, StringComparison.Ordinal);
            foreach (string m in new[] { "virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "virtio_rng" })
            {
                Assert.Contains($"check: module {m}", output, StringComparison.Ordinal);
            }

            Assert.Contains("check: inet 10.0.2.15/24", output, StringComparison.Ordinal);
            Assert.Contains("ringvisor: rv.init /mnt/vda/check.sh exited with status 3", output, StringComparison.Ordinal);
            Assert.DoesNotContain("ringvisor: insmod", output, StringComparison.Ordinal); // no module failed to load
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

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

    [QemuBootFact]
    public void Boot_NoParameters_ShellAcceptsCommandsOverSerialAndExitPowersOff()
    {
        var image = DefaultGuestImage.EnsureBuilt(null);

        using var guest = QemuGuest.Start(image, image.DefaultCommandLine, []);

        Assert.True(guest.WaitFor(InitScript.ReadyLine, s_bootTimeout), "no ready line:\n" + guest.Output);
        Assert.True(guest.WaitFor("# ", s_bootTimeout), "no shell prompt:\n" + guest.Output);
        guest.Send("echo sum=$((40 + 2)); tty");
        Assert.True(guest.WaitFor("sum=42", s_bootTimeout), "shell did not run the command:\n" + guest.Output);
        Assert.True(guest.WaitFor("/dev/ttyS0", s_bootTimeout), "the shell's controlling terminal is not ttyS0:\n" + guest.Output);
        guest.Send("exit");
        Assert.True(guest.WaitForExit(s_bootTimeout, out int rc), "guest did not power off after exit:\n" + guest.Output);
        Assert.Equal(0, rc);
        Assert.Contains("ringvisor: shell exited; powering off", guest.Output, StringComparison.Ordinal);
    }
}
