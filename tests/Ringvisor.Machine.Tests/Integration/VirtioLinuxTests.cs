// Linux's own virtio drivers against Ringvisor's devices (bt engine): a disk that survives the VMM being killed,
// and two VMs on one virtual switch.
using System.Diagnostics;
using System.Text.RegularExpressions;
using Ringvisor.Machine.Images;
using Ringvisor.Net.Switching;

namespace Ringvisor.Machine.Tests.Integration;

public sealed class VirtioLinuxTests
{
    [Fact]
    public void Disk_WriteSyncKillRestart_FileIntact()
    {
        string img = Path.Combine(Path.GetTempPath(), $"rv-disk-{Guid.NewGuid():N}.img");
        string token = Guid.NewGuid().ToString("N");
        try
        {
            DiskImage.CreateExt4(img, 16, new Dictionary<string, byte[]> { ["known.txt"] = DiskImage.TextFile("known-content\n") });
            using (var s = LinuxSession.Boot(EngineKind.Bt, disks: [new DiskConfig(img, ReadOnly: false)]))
            {
                Assert.Contains("/dev/vda", s.Run("ls /dev/vda"));
                Assert.Contains("known-content", s.Run("cat /mnt/vda/known.txt"));
                s.Run($"echo {token} > /mnt/vda/written.txt; sync");

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
            Assert.Contains(token, hostView);

            using (var s = LinuxSession.Boot(EngineKind.Bt, disks: [new DiskConfig(img, ReadOnly: false)]))
            {
                Assert.Contains(token, s.Run("cat /mnt/vda/written.txt"));
            }
        }
        finally
        {
            File.Delete(img);
        }
    }

    [Fact]
    public void Disk_WritableImageAlreadyInUse_ClearError()
    {
        string img = Path.Combine(Path.GetTempPath(), $"rv-lock-{Guid.NewGuid():N}.img");
        File.WriteAllBytes(img, new byte[1 << 20]);
        var image = DefaultGuestImage.EnsureBuilt(null);
        try
        {
            MachineConfig Cfg() => new()
            {
                KernelPath = image.Kernel,
                InitrdPaths = [image.Initrd],
                MemoryBytes = 256UL << 20,
                Engine = EngineKind.Bt,
                Disks = [new DiskConfig(img, false)],
            };
            using var first = MachineBuilder.Build(Cfg(), _ => { });
            var e = Assert.ThrowsAny<Exception>(() => MachineBuilder.Build(Cfg(), _ => { }).Dispose());
            Assert.Contains(img, e.Message);
        }
        finally
        {
            File.Delete(img);
        }
    }

    [Fact]
    public void TwoVmsOnOneSwitch_PingAndTransferWithMatchingChecksum()
    {
        string sw = $"rvtest{Environment.ProcessId}{Random.Shared.Next(1000)}";
        using var cts = new CancellationTokenSource();
        var server = new Thread(() => VirtualSwitchServer.Run(sw, cts.Token)) { IsBackground = true };
        server.Start();
        SpinWait.SpinUntil(() => File.Exists(SwitchSocketPath.For(sw)), TimeSpan.FromSeconds(10));
        try
        {
            // Addresses on the VMs' private virtual LAN (link-local; nothing reaches the host's network).
            using var a = LinuxSession.Boot(EngineKind.Bt, extraCommandLine: "rv.ip=169.254.77.1/24", nets: [new NetConfig(NetBackendKind.Switch, sw, null)], name: "a");
            using var b = LinuxSession.Boot(EngineKind.Bt, extraCommandLine: "rv.ip=169.254.77.2/24", nets: [new NetConfig(NetBackendKind.Switch, sw, null)], name: "b");

            Assert.Contains(" 0% packet loss", a.Run("ping -c 3 169.254.77.2"));

            // 8 MiB in CI (the guest's TCP stack runs in the interpreter); RINGVISOR_NET_TEST_MIB=64 for the full run.
            int mib = int.TryParse(Environment.GetEnvironmentVariable("RINGVISOR_NET_TEST_MIB"), out int m) && m is > 0 and <= 128 ? m : 8;
            b.Send("nc -l -p 5000 > /tmp/recv; echo RECV-DONE-$((6*7))");
            Thread.Sleep(2000);
            string sent = a.Run($"dd if=/dev/urandom of=/tmp/send bs=1M count={mib} 2>/dev/null; md5sum /tmp/send; nc 169.254.77.2 5000 < /tmp/send");
            b.Console.WaitFor("RECV-DONE-42", LinuxSession.CommandLimit, () => b.Stopped);
            string received = b.Run("md5sum /tmp/recv; ls -l /tmp/recv");

            // md5sum prints "<32 hex digits>  <file>" at the start of a line; the echoed command never does.
            var sentSum = Regex.Match(sent, "^([0-9a-f]{32})  /tmp/send", RegexOptions.Multiline);
            var recvSum = Regex.Match(received, "^([0-9a-f]{32})  /tmp/recv", RegexOptions.Multiline);
            Assert.True(sentSum.Success, $"no md5 of /tmp/send in: {sent}");
            Assert.True(recvSum.Success, $"no md5 of /tmp/recv in: {received}");
            Assert.Equal(sentSum.Groups[1].Value, recvSum.Groups[1].Value);
            Assert.Contains((mib << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), received);
        }
        finally
        {
            cts.Cancel();
        }
    }
}
