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
}
