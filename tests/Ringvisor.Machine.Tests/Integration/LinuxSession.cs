// Boots the default guest in-process and drives its shell over the serial console, expect-style.
using System.Text;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Integration;

internal sealed class LinuxSession : IDisposable
{
    /// <summary>bt: a boot interprets about 1.5 billion guest instructions (tens of seconds; minutes on a busy CI machine).</summary>
    public static readonly TimeSpan BootLimit = TimeSpan.FromMinutes(10);
    public static readonly TimeSpan CommandLimit = TimeSpan.FromMinutes(5);

    /// <summary>
    /// kvm (VT-x/AMD-V): the guest reaches its shell in a few seconds; the limits leave room for a loaded CI machine
    /// yet fail a guest that hangs in well under a minute, with the console tail and the VM's stop reason.
    /// </summary>
    public static readonly TimeSpan KvmBootLimit = TimeSpan.FromSeconds(60);
    public static readonly TimeSpan KvmCommandLimit = TimeSpan.FromSeconds(60);

    private LinuxSession(BuiltMachine machine, GuestConsole console, GuestImagePaths image, EngineKind engine)
    {
        Machine = machine;
        Console = console;
        Image = image;
        Engine = engine;
    }

    public EngineKind Engine { get; }

    /// <summary>How long one command (or the power-off) may take under this session's engine.</summary>
    public TimeSpan CommandTimeout => CommandLimitFor(Engine);

    public static TimeSpan BootLimitFor(EngineKind engine) => engine == EngineKind.Kvm ? KvmBootLimit : BootLimit;

    public static TimeSpan CommandLimitFor(EngineKind engine) => engine == EngineKind.Kvm ? KvmCommandLimit : CommandLimit;

    public BuiltMachine Machine { get; }

    public GuestConsole Console { get; }

    public GuestImagePaths Image { get; }

    public bool Stopped => Machine.Vm.StopResult is not null;

    /// <summary>Boots the default guest under <paramref name="engine"/> and waits for its shell prompt.</summary>
    public static LinuxSession Boot(EngineKind engine, int cpus = 1, string extraCommandLine = "",
        IReadOnlyList<DiskConfig>? disks = null, IReadOnlyList<NetConfig>? nets = null, string name = "vm",
        IReadOnlyList<ConsoleConfig>? consoles = null, bool verifyUnits = false)
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
            BtVerifyUnits = verifyUnits,
        };
        var m = MachineBuilder.Build(cfg, console.Write);
        var s = new LinuxSession(m, console, image, engine);
        try
        {
            m.Vm.Start();
            s.WaitFor(InitScript.ReadyLine, BootLimitFor(engine));
            s.WaitFor("# ", s.CommandTimeout);
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
        return WaitFor($"END-{token}-42", limit ?? CommandTimeout);
    }

    /// <summary>Waits for console text; a failure names the engine, the vCPU count and why the VM stopped, if it did.</summary>
    public string WaitFor(string needle, TimeSpan? limit = null) =>
        Console.WaitFor(needle, limit ?? CommandTimeout, () => Stopped, Describe);

    private string Describe()
    {
        string engine = $"engine {Machine.Engine} ({Machine.EngineReason}), {Machine.Vm.Vcpus.Count} vCPU(s)";
        return Machine.Vm.StopResult is { } r ? $"{engine}; VM stopped: {r.Reason}, exit status {r.ExitStatus}: {r.Detail}" : engine;
    }

    /// <summary>Sends a command without waiting for it (e.g. poweroff, or a server left running).</summary>
    public void Send(string command) => Machine.SendConsoleInput(Encoding.ASCII.GetBytes(command + "\n"));

    public void Dispose() => Machine.Dispose();
}
