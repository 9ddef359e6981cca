// `ringvisor switch NAME`: run a named switch until cancelled, at the path SwitchSocketPath.For(NAME).
namespace Ringvisor.Net.Switching;

public static class VirtualSwitchServer
{
    private static readonly TimeSpan s_housekeeping = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Runs switch <paramref name="name"/> until <paramref name="cancellation"/> fires; writes one status line to
    /// <paramref name="log"/> at start and the per-port counters at the end. Returns the process exit status.
    /// </summary>
    /// <exception cref="ArgumentException">Bad name.</exception>
    /// <exception cref="InvalidOperationException">Another switch of that name is running, or the socket cannot be created.</exception>
    public static int Run(string name, CancellationToken cancellation, TextWriter? log = null)
    {
        string path = SwitchSocketPath.For(name);
        string dir = Path.GetDirectoryName(path)!;
        System.IO.Directory.CreateDirectory(dir);
        if (!OperatingSystem.IsWindows())
        {
            // Other users must not join (or impersonate) this user's switches.
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        using var vs = new VirtualSwitch(name);
        vs.Listen(path);
        log?.WriteLine($"switch {name}: listening on {path}");
        while (!cancellation.WaitHandle.WaitOne(s_housekeeping))
        {
            vs.Switch.ExpireMacs();
        }

        foreach (var p in vs.Switch.Ports)
        {
            log?.WriteLine($"switch {name}: {p}: {p.Counters}");
        }

        return 0;
    }
}
