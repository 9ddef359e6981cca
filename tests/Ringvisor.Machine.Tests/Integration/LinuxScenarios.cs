// The default guest's scenarios, parametrised by engine so the bt tests (LinuxBootTests, VirtioLinuxTests,
// PciIntxLinuxTests) and the kvm tests (KvmLinuxTests) run the same script: a shell session checked against the host,
// a virtio-blk disk that survives the VMM being killed, two VMs on one virtual switch, and a disk over PCI INTx.
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Ringvisor.Core.Vm;
using Ringvisor.Machine.Images;
using Ringvisor.Net.Switching;

namespace Ringvisor.Machine.Tests.Integration;

internal static class LinuxScenarios
{
    /// <summary>
    /// uname, /proc/cpuinfo (one "processor" per vCPU), /proc/interrupts (a column per vCPU), a shell loop, md5sum of
    /// generated data checked against the host's md5 of the same bytes, and poweroff with exit status 0.
    /// </summary>
    public static void ScriptedSession(EngineKind engine, int cpus, bool verifyUnits = false)
    {
        using var s = LinuxSession.Boot(engine, cpus, verifyUnits: verifyUnits);

        Assert.Contains(s.Image.KernelVersion, s.Run("uname -r"));

        string cpuinfo = s.Run("grep -c ^processor /proc/cpuinfo");
        Assert.Contains($"\n{cpus}\r", cpuinfo.Replace("\r\r", "\r", StringComparison.Ordinal), StringComparison.Ordinal);

        string interrupts = s.Run("cat /proc/interrupts");
        for (int cpu = 0; cpu < cpus; cpu++)
        {
            Assert.Contains($"CPU{cpu}", interrupts, StringComparison.Ordinal);
        }

        string loop = s.Run("i=0; t=0; while [ $i -lt 500 ]; do t=$((t+i*i)); i=$((i+1)); done; echo sum=$t");
        Assert.Contains($"sum={Enumerable.Range(0, 500).Sum(i => (long)i * i)}", loop, StringComparison.Ordinal);

        // 2000 lines "line N" generated in the guest; the host computes the md5 of the same bytes.
        string md5 = s.Run("i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done | md5sum");
        var expected = new StringBuilder();
        for (int i = 0; i < 2000; i++)
        {
            expected.Append("line ").Append(i).Append('\n');
        }

#pragma warning disable CA5351 // md5sum is what the guest runs; this is a checksum, not security
        string hostMd5 = Convert.ToHexStringLower(MD5.HashData(Encoding.ASCII.GetBytes(expected.ToString())));
#pragma warning restore CA5351
        Assert.Contains(hostMd5, md5, StringComparison.Ordinal);

        s.Send("poweroff -f");
        var result = s.Machine.Vm.WaitForStop(s.CommandTimeout);
        Assert.True(result.Reason is VmStopReason.HaltedForever or VmStopReason.PowerOff, $"{result.Reason}: {result.Detail}");
        Assert.Equal(0, result.ExitStatus);
    }

    /// <summary>
    /// An ext4 image with a known file: the guest reads it, writes and syncs another, the VMM is "killed" (no guest
    /// shutdown), the host sees the file in the image (debugfs), and a second boot reads it back. Under kvm the
    /// queue notifications must have gone through the ioeventfd path.
    /// </summary>
    public static void DiskWriteSyncKillRestart(EngineKind engine)
    {
        string img = Path.Combine(Path.GetTempPath(), $"rv-disk-{Guid.NewGuid():N}.img");
        string token = Guid.NewGuid().ToString("N");
        try
        {
            DiskImage.CreateExt4(img, 16, new Dictionary<string, byte[]> { ["known.txt"] = DiskImage.TextFile("known-content\n") });
            using (var s = LinuxSession.Boot(engine, disks: [new DiskConfig(img, ReadOnly: false)]))
            {
                Assert.Contains("/dev/vda", s.Run("ls /dev/vda"), StringComparison.Ordinal);
                Assert.Contains("known-content", s.Run("cat /mnt/vda/known.txt"), StringComparison.Ordinal);
                s.Run($"echo {token} > /mnt/vda/written.txt; sync");
                if (engine == EngineKind.Kvm)
                {
                    var notifier = s.Machine.VirtioNotifier;
                    Assert.NotNull(notifier);
                    Assert.True(notifier.DeliveredNotifications > 0, "no virtio notification came through an ioeventfd");
                }

                // No guest shutdown: the VMM goes away as if killed.
                s.Machine.Vm.Quit();
            }

            // The host sees the guest's write in the image file itself.
            var debugfs = Process.Start(new ProcessStartInfo("debugfs", ["-R", "cat /written.txt", img])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            string hostView = debugfs.StandardOutput.ReadToEnd();
            debugfs.WaitForExit();
            Assert.Contains(token, hostView, StringComparison.Ordinal);

            using (var s = LinuxSession.Boot(engine, disks: [new DiskConfig(img, ReadOnly: false)]))
            {
                Assert.Contains(token, s.Run("cat /mnt/vda/written.txt"), StringComparison.Ordinal);
            }
        }
        finally
        {
            File.Delete(img);
        }
    }

    /// <summary>
    /// Two VMs on one virtual switch: ping, then a transfer (8 MiB, RINGVISOR_NET_TEST_MIB to change) whose md5 must
    /// match on both sides.
    /// </summary>
    public static void TwoVmsOnOneSwitch(EngineKind engine)
    {
        string sw = $"rvtest{Environment.ProcessId}{Random.Shared.Next(1000)}";
        using var cts = new CancellationTokenSource();
        var server = new Thread(() => VirtualSwitchServer.Run(sw, cts.Token)) { IsBackground = true };
        server.Start();
        SpinWait.SpinUntil(() => File.Exists(SwitchSocketPath.For(sw)), TimeSpan.FromSeconds(10));
        try
        {
            // Addresses on the VMs' private virtual LAN (link-local; nothing reaches the host's network).
            using var a = LinuxSession.Boot(engine, extraCommandLine: "rv.ip=169.254.77.1/24", nets: [new NetConfig(NetBackendKind.Switch, sw, null)], name: "a");
            using var b = LinuxSession.Boot(engine, extraCommandLine: "rv.ip=169.254.77.2/24", nets: [new NetConfig(NetBackendKind.Switch, sw, null)], name: "b");

            Assert.Contains(" 0% packet loss", a.Run("ping -c 3 169.254.77.2"), StringComparison.Ordinal);

            int mib = int.TryParse(Environment.GetEnvironmentVariable("RINGVISOR_NET_TEST_MIB"), out int m) && m is > 0 and <= 128 ? m : 8;
            b.Send("nc -l -p 5000 > /tmp/recv; echo RECV-DONE-$((6*7))");
            Thread.Sleep(2000);
            string sent = a.Run($"dd if=/dev/urandom of=/tmp/send bs=1M count={mib} 2>/dev/null; md5sum /tmp/send; nc 169.254.77.2 5000 < /tmp/send");
            b.WaitFor("RECV-DONE-42");
            string received = b.Run("md5sum /tmp/recv; ls -l /tmp/recv");

            // md5sum prints "<32 hex digits>  <file>" at the start of a line; the echoed command never does.
            var sentSum = Regex.Match(sent, "^([0-9a-f]{32})  /tmp/send", RegexOptions.Multiline);
            var recvSum = Regex.Match(received, "^([0-9a-f]{32})  /tmp/recv", RegexOptions.Multiline);
            Assert.True(sentSum.Success, $"no md5 of /tmp/send in: {sent}");
            Assert.True(recvSum.Success, $"no md5 of /tmp/recv in: {received}");
            Assert.Equal(sentSum.Groups[1].Value, recvSum.Groups[1].Value);
            Assert.Contains((mib << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), received, StringComparison.Ordinal);
        }
        finally
        {
            cts.Cancel();
        }
    }

    /// <summary>
    /// With MSI off (pci=nomsi) the virtio disk's interrupts come over PCI INTx: /proc/interrupts shows virtio0 on
    /// <paramref name="controller"/> with a non-zero count, and poweroff ends the VM. "IO-APIC": the machine's ACPI
    /// tables (MADT, DSDT _PRT), power-off through ACPI S5. "XT-PIC": the guest is booted with acpi=off, so Linux
    /// runs on the 8259s (IRQ from the interrupt line register, level-triggered per the ELCR) and poweroff halts.
    /// </summary>
    public static void DiskWithoutMsiOverIntx(EngineKind engine, int cpus, string controller)
    {
        string img = Path.Combine(Path.GetTempPath(), $"rv-intx-{Guid.NewGuid():N}.img");
        try
        {
            DiskImage.CreateExt4(img, 16, new Dictionary<string, byte[]> { ["known.txt"] = DiskImage.TextFile("intx-known-content\n") });
            bool pic = controller == "XT-PIC";
            using var s = LinuxSession.Boot(engine, cpus, pic ? "pci=nomsi acpi=off" : "pci=nomsi", disks: [new DiskConfig(img, ReadOnly: false)]);

            Assert.Contains("intx-known-content", s.Run("cat /mnt/vda/known.txt"), StringComparison.Ordinal);

            // virtio0 is the disk (first PCI function after the host bridge).
            string interrupts = s.Run("cat /proc/interrupts");
            string? line = interrupts.Split('\n').FirstOrDefault(l => l.TrimEnd('\r').EndsWith("virtio0", StringComparison.Ordinal));
            Assert.True(line is not null, $"no virtio0 line in /proc/interrupts:\n{interrupts}");
            Assert.Contains(controller, line, StringComparison.Ordinal);
            Assert.DoesNotContain("MSI", line, StringComparison.Ordinal);
            Assert.True(InterruptCount(line) > 0, $"virtio0 took no interrupts: {line}");

            s.Send("poweroff -f");
            var result = s.Machine.Vm.WaitForStop(s.CommandTimeout);
            var expected = pic ? VmStopReason.HaltedForever : VmStopReason.PowerOff; // ACPI S5 only when the guest uses ACPI
            Assert.True(result.Reason == expected, $"{result.Reason}: {result.Detail}");
            Assert.Equal(0, result.ExitStatus);
        }
        finally
        {
            File.Delete(img);
        }
    }

    /// <summary>Sums the per-CPU counts of a /proc/interrupts line: the numbers after "IRQ:" up to the controller name.</summary>
    private static long InterruptCount(string line)
    {
        long sum = 0;
        foreach (string token in line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!long.TryParse(token, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long n))
            {
                break;
            }

            sum += n;
        }

        return sum;
    }
}
