// Boots the default guest in-process and drives its shell over the serial console, expect-style.
using System.Text;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Integration;

internal sealed class LinuxSession : IDisposable
{
    public static readonly TimeSpan BootLimit = TimeSpan.FromMinutes(10);
    public static readonly TimeSpan CommandLimit = TimeSpan.FromMinutes(5);

    private LinuxSession(BuiltMachine machine, GuestConsole console, GuestImagePaths image)
    {
        Machine = machine;
        Console = console;
        Image = image;
    }

    public BuiltMachine Machine { get; }

    public GuestConsole Console { get; }

    public GuestImagePaths Image { get; }

    public bool Stopped => Machine.Vm.StopResult is not null;

    /// <summary>Boots the default guest under <paramref name="engine"/> and waits for its shell prompt.</summary>
    public static LinuxSession Boot(EngineKind engine, int cpus = 1, string extraCommandLine = "",
        IReadOnlyList<DiskConfig>? disks = null, IReadOnlyList<NetConfig>? nets = null, string name = "vm",
        IReadOnlyList<ConsoleConfig>? consoles = null)
    {
        var image = DefaultGuestImage.EnsureBuilt(null);
        var console = new GuestConsole();
        var cfg = new MachineConfig
        {
            KernelPath = image.Kernel,
            InitrdPaths = [image.Initrd],
            CommandLine = $"{image.DefaultCommandLine} {extraCommandLine}".Trim(),
            MemoryBytes = 256UL << 20,
            VcpuCount = cpus,
            Engine = engine,
            Disks = disks ?? [],
            Nets = nets ?? [],
            Consoles = consoles ?? [],
            Name = name,
        };
        var m = MachineBuilder.Build(cfg, console.Write);
        var s = new LinuxSession(m, console, image);
        try
        {
            m.Vm.Start();
            console.WaitFor(InitScript.ReadyLine, BootLimit, () => s.Stopped);
            console.WaitFor("# ", CommandLimit, () => s.Stopped);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs a shell command and returns the console text up to its end marker. The marker is computed by the shell
    /// (42 = 6*7), so the echoed command line cannot match it.
    /// </summary>
    public string Run(string command, TimeSpan? limit = null)
    {
        var token = Guid.NewGuid().ToString("N")[..8];
        Machine.SendConsoleInput(Encoding.ASCII.GetBytes($"{command}; echo END-{token}-$((6*7))\n"));
        return Console.WaitFor($"END-{token}-42", limit ?? CommandLimit, () => Stopped);
    }

    /// <summary>Sends a command without waiting for it (e.g. poweroff, or a server left running).</summary>
    public void Send(string command) => Machine.SendConsoleInput(Encoding.ASCII.GetBytes(command + "\n"));

    public void Dispose() => Machine.Dispose();
}
