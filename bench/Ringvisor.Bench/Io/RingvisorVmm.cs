// Ringvisor's CLI with the bt engine: `ringvisor run --engine bt --disk … --net switch=NAME`, and a
// `ringvisor switch NAME` child process as the VMs' LAN. The CLI built by ./ringvisor is run with `dotnet` directly:
// the launcher rebuilds whenever a source file is newer than its last build, and a rebuild in the middle of a
// measurement would overwrite the assemblies of a VM (or switch) that is still running.
using System.Diagnostics;
using Ringvisor.Machine.Images;
using Ringvisor.Net.Switching;

namespace Ringvisor.Bench.Io;

internal sealed class RingvisorVmm(string cliDll) : Vmm
{
    // What ./ringvisor exports before running the CLI.
    private static readonly Dictionary<string, string> s_environment = new(StringComparer.Ordinal) { ["DOTNET_TieredPGO"] = "1" };

    private static readonly TimeSpan s_switchStartLimit = TimeSpan.FromMinutes(2);

    public override string Name => "ringvisor";

    public override ConsoleProcess Start(string label, GuestImagePaths image, string extraAppend, IReadOnlyList<string> disks, IReadOnlyList<string>? net, Stopwatch clock)
    {
        // --name gives each VM its own stable MAC address.
        var args = new List<string> { cliDll, "run", "--engine", "bt", "--memory", "256M", "--cpus", "1", "--name", $"io-{label}", "--append", $"{image.DefaultCommandLine} {extraAppend}" };
        foreach (var d in disks)
        {
            args.Add("--disk");
            args.Add(d);
        }

        args.AddRange(net ?? []);
        return ConsoleProcess.Start($"{Name} {label}", "dotnet", args, clock, s_environment);
    }

    public override NetLink? CreateLink(Stopwatch clock)
    {
        string name = $"rvio{Environment.ProcessId}x{Random.Shared.Next(100000)}";
        string socket = SwitchSocketPath.For(name);
        var sw = ConsoleProcess.Start($"{Name} switch", "dotnet", [cliDll, "switch", name], clock, s_environment);
        var waited = Stopwatch.StartNew();
        while (!File.Exists(socket) && waited.Elapsed < s_switchStartLimit && !sw.HasExited)
        {
            Thread.Sleep(100);
        }

        void Stop()
        {
            sw.Dispose();
            File.Delete(socket);
        }

        if (!File.Exists(socket))
        {
            Console.WriteLine($"{Name}: switch {name} did not create {socket}:");
            Console.WriteLine(sw.Tail());
            Stop();
            return null;
        }

        string[] nic = ["--net", $"switch={name}"];
        return new NetLink(nic, nic, Stop);
    }
}
