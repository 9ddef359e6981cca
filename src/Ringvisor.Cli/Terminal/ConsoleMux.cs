// QEMU-style console multiplexer on stdin: bytes go to the guest's serial port, except the escape Ctrl-A:
// Ctrl-A x quits, Ctrl-A Ctrl-A (or Ctrl-A a) sends one Ctrl-A, Ctrl-A h prints help. Works for a terminal and
// for piped input alike; end of input leaves the VM running (a script ends the guest itself, e.g. poweroff).
namespace Ringvisor.Cli.Terminal;

internal sealed class ConsoleMux
{
    public const byte EscapeByte = 0x01; // Ctrl-A

    private readonly Action<ReadOnlySpan<byte>> _toGuest;
    private readonly Action _quit;
    private readonly Action<string> _message;
    private bool _escape;

    public ConsoleMux(Action<ReadOnlySpan<byte>> toGuest, Action quit, Action<string> message)
    {
        _toGuest = toGuest;
        _quit = quit;
        _message = message;
    }

    /// <summary>True once Ctrl-A x was seen; later input is ignored.</summary>
    public bool QuitRequested { get; private set; }

    public void Feed(ReadOnlySpan<byte> input)
    {
        int start = 0;
        for (int i = 0; i < input.Length && !QuitRequested; i++)
        {
            byte b = input[i];
            if (_escape)
            {
                _escape = false;
                start = i + 1;
                switch (b)
                {
                    case (byte)'x' or (byte)'X':
                        QuitRequested = true;
                        _quit();
                        return;
                    case EscapeByte or (byte)'a':
                        _toGuest([EscapeByte]);
                        break;
                    case (byte)'h' or (byte)'?':
                        _message("\r\nC-a h    print this help\r\nC-a x    exit Ringvisor\r\nC-a C-a  send C-a\r\n");
                        break;
                    default:
                        break;
                }
            }
            else if (b == EscapeByte)
            {
                if (i > start)
                {
                    _toGuest(input[start..i]);
                }

                _escape = true;
                start = i + 1;
            }
        }

        if (!QuitRequested && !_escape && start < input.Length)
        {
            _toGuest(input[start..]);
        }
    }

    /// <summary>Reads stdin on a background thread until end of input or quit.</summary>
    public Thread StartStdinPump()
    {
        var t = new Thread(() =>
        {
            var buf = new byte[4096];
            while (!QuitRequested)
            {
                nint n = Native.Termios.read(0, buf, buf.Length);
                if (n <= 0)
                {
                    if (n < 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == 4)
                    {
                        continue; // EINTR
                    }

                    break;
                }

                Feed(buf.AsSpan(0, (int)n));
            }
        })
        { IsBackground = true, Name = "stdin" };
        t.Start();
        return t;
    }
}
