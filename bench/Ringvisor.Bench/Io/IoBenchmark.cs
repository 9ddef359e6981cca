// Issue 5's I/O benchmark: sequential virtio-blk write and read MiB/s inside the default guest, and VM-to-VM TCP
// throughput between two guests, under Ringvisor's bt engine and, in the same run, under QEMU TCG with the same
// kernel, initramfs, scripts, disk images and modern virtio-pci devices.
//   blk: rv.init script on an ext4 disk (vda) writes N MiB to a raw scratch disk (vdb) with dd conv=fsync, drops the
//        page cache, reads them back.  net: two VMs (Ringvisor: one `ringvisor switch`; QEMU: -netdev socket on
//        loopback) on a private link-local LAN; the sender pipes M MiB of zeros into busybox nc, the receiver counts
//        the bytes with wc -c.
// The figures are by the guest's own clock (/proc/uptime printed with each marker; for net, the receiver's clock from
// the first byte to end of stream). Host wall-clock times between markers, taken as the lines arrive, are printed as
// a cross-check: under Ringvisor they agree with the guest clock within about 1%, but QEMU's serial output reaches the
// host in bursts, so markers around a sub-second phase can arrive together and its host-clock figures are then
// meaningless (seen: 10^8 MiB/s). The net host clock spans two processes (sender's start to receiver's end).
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Ringvisor.Machine.Images;

namespace Ringvisor.Bench.Io;

internal static class IoBenchmark
{
    // Link-local addresses (RFC 3927) on the VMs' private virtual LAN only; nothing reaches the host's network.
    private const string ReceiverIp = "169.254.77.1";
    private const string SenderIp = "169.254.77.2";
    private const int PrefixLength = 24;

    private const int ScriptDiskMiB = 8;

    private static readonly TimeSpan s_bootLimit = TimeSpan.FromMinutes(15);
    private static readonly TimeSpan s_phaseLimit = TimeSpan.FromMinutes(15);

    private static readonly string[] s_metrics = ["blk write", "blk read", "net tcp", "blk write (host clock)", "blk read (host clock)", "net tcp (host clock)"];

    public static int Run(string[] args)
    {
        int runs = 3;
        bool withQemu = true;
        // 128 MiB: /proc/uptime counts in 10 ms steps, and QEMU reads 32 MiB in about 0.1 s; the bt engine moves
        // 128 MiB in seconds, not minutes, so the larger size costs little and keeps QEMU's figure within a few %.
        int blkMib = 128;
        int netMib = 16;
        bool doBlk = true;
        bool doNet = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--runs" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out int r) && r > 0:
                    runs = r;
                    i++;
                    break;
                case "--blk-mib" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out int b) && b is > 0 and <= 1024:
                    blkMib = b;
                    i++;
                    break;
                case "--net-mib" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out int n) && n is > 0 and <= 4096:
                    netMib = n;
                    i++;
                    break;
                case "--only" when i + 1 < args.Length && args[i + 1] is "blk" or "net":
                    doBlk = args[i + 1] == "blk";
                    doNet = !doBlk;
                    i++;
                    break;
                case "--no-qemu":
                    withQemu = false;
                    break;
                default:
                    Console.Error.WriteLine("usage: io [--runs N] [--no-qemu] [--blk-mib N] [--net-mib M] [--only blk|net]");
                    return 2;
            }
        }

        var image = DefaultGuestImage.EnsureBuilt(null);
        string repo = BenchSupport.FindRepositoryRoot();
        string launcher = Path.Combine(repo, "ringvisor");
        string cliDll = Path.Combine(repo, ".build", "cli", "ringvisor.dll"); // where ./ringvisor builds the CLI
        string? qemu = withQemu ? BenchSupport.FindOnPath("qemu-system-x86_64") : null;
        string work = Path.Combine(Path.GetTempPath(), $"rv-io-bench-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(work);

        // Build the CLI once outside the timed runs; every VM of the run then uses that build (see RingvisorVmm).
        BuildLauncher(launcher);
        if (!File.Exists(cliDll))
        {
            Console.Error.WriteLine($"io: {launcher} did not build {cliDll}");
            return 1;
        }

        var vmms = new List<Vmm> { new RingvisorVmm(cliDll) };
        if (qemu is not null)
        {
            vmms.Add(new QemuVmm(qemu));
        }

        var results = vmms.ToDictionary(v => v.Name, _ => new List<Dictionary<string, double>>());
        Console.WriteLine($"io: blk {blkMib} MiB sequential write+read on a raw scratch disk; net {netMib} MiB VM-to-VM TCP; {runs} run(s); 1 vCPU, 256 MiB per VM");
        try
        {
            for (int run = 0; run < runs; run++)
            {
                foreach (var vmm in vmms)
                {
                    var m = new Dictionary<string, double>();
                    if (doBlk)
                    {
                        MeasureBlock(vmm, image, work, blkMib, m);
                    }

                    if (doNet)
                    {
                        MeasureNet(vmm, image, work, netMib, m);
                    }

                    Console.WriteLine($"{vmm.Name} run {run + 1}: " + string.Join("  ", m.Select(kv => $"{kv.Key}={BenchSupport.Fmt(kv.Value)}")));
                    results[vmm.Name].Add(m);
                }
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }

        Console.WriteLine();
        Console.WriteLine($"MiB/s, median of {runs} run(s); ratio = ringvisor / qemu-tcg (higher is better for ringvisor)");
        Console.WriteLine($"{"metric",-24} {"ringvisor",10} {"qemu-tcg",10} {"ratio",8}");
        foreach (var metric in s_metrics.Where(k => (doBlk || !k.StartsWith("blk", StringComparison.Ordinal)) && (doNet || !k.StartsWith("net", StringComparison.Ordinal))))
        {
            double a = BenchSupport.Median(results["ringvisor"], metric);
            double q = results.TryGetValue("qemu-tcg", out var qr) ? BenchSupport.Median(qr, metric) : double.NaN;
            string ratio = double.IsNaN(a) || double.IsNaN(q) || q == 0 ? "-" : (a / q).ToString("F2", CultureInfo.InvariantCulture);
            Console.WriteLine($"{metric,-24} {BenchSupport.Fmt(a),10} {BenchSupport.Fmt(q),10} {ratio,8}");
        }

        if (qemu is null && withQemu)
        {
            Console.WriteLine("qemu-system-x86_64 not found: install qemu-system-x86 for the comparison");
        }

        return 0;
    }

    private static void MeasureBlock(Vmm vmm, GuestImagePaths image, string work, int mib, Dictionary<string, double> into)
    {
        string scriptDisk = Path.Combine(work, $"blk-script-{vmm.Name}.img");
        string scratch = Path.Combine(work, $"blk-scratch-{vmm.Name}.img");
        DiskImage.CreateExt4(scriptDisk, ScriptDiskMiB, new Dictionary<string, byte[]> { [IoScripts.FileName] = DiskImage.TextFile(IoScripts.Block(mib)) });

        // A fresh sparse scratch image for every measurement, so both VMMs write to the same kind of host file.
        using (var f = new FileStream(scratch, FileMode.Create, FileAccess.Write))
        {
            f.SetLength(Math.Max(64, 2L * mib) << 20);
        }

        try
        {
            var clock = Stopwatch.StartNew();
            using var p = vmm.Start("blk", image, $"rv.init={IoScripts.GuestPath}", [scriptDisk, scratch], net: null, clock);
            if (Wait(p, "write-start", s_bootLimit) is not { } ws
                || Wait(p, "write-end", s_phaseLimit) is not { } we
                || Wait(p, "read-start", s_phaseLimit) is not { } rs
                || Wait(p, "read-end", s_phaseLimit) is not { } re)
            {
                return;
            }

            if (p.LineWith(IoScripts.MarkerPrefix + "error") is { } error)
            {
                Console.WriteLine($"{vmm.Name} blk: {error}");
                return;
            }

            AddGuestClock(into, "blk write", mib, p, "write-start", "write-end");
            AddGuestClock(into, "blk read", mib, p, "read-start", "read-end");
            into["blk write (host clock)"] = mib / (we - ws);
            into["blk read (host clock)"] = mib / (re - rs);
            p.Finish(TimeSpan.FromSeconds(60));
        }
        finally
        {
            File.Delete(scriptDisk);
            File.Delete(scratch);
        }
    }

    private static void MeasureNet(Vmm vmm, GuestImagePaths image, string work, int mib, Dictionary<string, double> into)
    {
        string rxDisk = Path.Combine(work, $"net-rx-{vmm.Name}.img");
        string txDisk = Path.Combine(work, $"net-tx-{vmm.Name}.img");
        DiskImage.CreateExt4(rxDisk, ScriptDiskMiB, new Dictionary<string, byte[]> { [IoScripts.FileName] = DiskImage.TextFile(IoScripts.Receiver()) });
        DiskImage.CreateExt4(txDisk, ScriptDiskMiB, new Dictionary<string, byte[]> { [IoScripts.FileName] = DiskImage.TextFile(IoScripts.Sender(ReceiverIp, mib)) });
        var clock = Stopwatch.StartNew();
        NetLink? link = null;
        try
        {
            link = vmm.CreateLink(clock);
            if (link is null)
            {
                return;
            }

            using var rx = vmm.Start("net-rx", image, $"rv.init={IoScripts.GuestPath} rv.ip={ReceiverIp}/{PrefixLength}", [rxDisk], link.Receiver, clock);
            if (Wait(rx, "listening", s_bootLimit) is null)
            {
                return;
            }

            using var tx = vmm.Start("net-tx", image, $"rv.init={IoScripts.GuestPath} rv.ip={SenderIp}/{PrefixLength}", [txDisk], link.Sender, clock);
            if (Wait(tx, "send-start", s_bootLimit) is not { } start || Wait(rx, "recv-end", s_phaseLimit) is not { } end)
            {
                return;
            }

            long expected = (long)mib << 20;
            string? bytesLine = Wait(rx, "bytes", TimeSpan.FromMinutes(1)) is null ? null : rx.LineWith(IoScripts.MarkerPrefix + "bytes ");
            if (bytesLine is null || !bytesLine.EndsWith(" " + expected.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal))
            {
                Console.WriteLine($"{vmm.Name} net: expected {expected} bytes at the receiver, got \"{bytesLine}\"");
                return;
            }

            AddGuestClock(into, "net tcp", mib, rx, "recv-start", "recv-end");
            into["net tcp (host clock)"] = mib / (end - start);
            rx.Finish(TimeSpan.FromSeconds(60));
            tx.Finish(TimeSpan.FromSeconds(60));
        }
        finally
        {
            link?.Dispose();
            File.Delete(rxDisk);
            File.Delete(txDisk);
        }
    }

    /// <summary>MiB/s by one guest's uptime between two of its markers (two guests' clocks are not comparable).</summary>
    private static void AddGuestClock(Dictionary<string, double> into, string key, int mib, ConsoleProcess p, string startMarker, string endMarker)
    {
        if (IoScripts.UptimeOf(p.LineWith(IoScripts.MarkerPrefix + startMarker + " ")) is { } s
            && IoScripts.UptimeOf(p.LineWith(IoScripts.MarkerPrefix + endMarker + " ")) is { } e
            && e > s)
        {
            into[key] = mib / (e - s);
        }
    }

    private static double? Wait(ConsoleProcess p, string marker, TimeSpan limit)
    {
        double? t = p.WaitFor(IoScripts.MarkerPrefix + marker + " ", limit);
        if (t is null)
        {
            Console.WriteLine($"{p.Label}: no \"{marker}\" marker within {limit.TotalMinutes:F0} min (or the VMM ended); last output:");
            Console.WriteLine(p.Tail());
        }

        return t;
    }

    private static void BuildLauncher(string launcher)
    {
        var psi = new ProcessStartInfo(launcher) { UseShellExecute = false, RedirectStandardOutput = true };
        psi.ArgumentList.Add("--help");
        using var p = Process.Start(psi)!;
        p.StandardOutput.ReadToEnd();
        p.WaitForExit(TimeSpan.FromMinutes(10));
    }


    /// <summary>A free TCP port on loopback for QEMU's -netdev socket (taken by QEMU right after).</summary>
    internal static int FreeLoopbackPort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
