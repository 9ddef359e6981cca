// Puts stdin's terminal in raw mode (so Ctrl-C, arrows, etc. reach the guest) and restores it on every exit
// path: Dispose, process exit, and unhandled exceptions.
using Ringvisor.Cli.Terminal.Native;

namespace Ringvisor.Cli.Terminal;

internal sealed class RawTerminal : IDisposable
{
    private static readonly object s_gate = new();
    private static byte[]? s_saved;

    private RawTerminal()
    {
    }

    public static bool StdinIsTerminal => Termios.isatty(0) == 1;

    /// <summary>Enters raw mode when stdin is a terminal; otherwise returns an instance that does nothing.</summary>
    public static RawTerminal Enter()
    {
        if (!StdinIsTerminal)
        {
            return new RawTerminal();
        }

        var saved = new byte[Termios.BufferSize];
        if (Termios.tcgetattr(0, saved) != 0)
        {
            return new RawTerminal();
        }

        var raw = (byte[])saved.Clone();
        Termios.cfmakeraw(raw);
        lock (s_gate)
        {
            s_saved = saved;
        }

        AppDomain.CurrentDomain.ProcessExit += (_, _) => Restore();
        AppDomain.CurrentDomain.UnhandledException += (_, _) => Restore();
        _ = Termios.tcsetattr(0, Termios.TcsaNow, raw);
        return new RawTerminal();
    }

    public static void Restore()
    {
        lock (s_gate)
        {
            if (s_saved is null)
            {
                return;
            }

            _ = Termios.tcsetattr(0, Termios.TcsaNow, s_saved);
            s_saved = null;
        }
    }

    public void Dispose() => Restore();
}
