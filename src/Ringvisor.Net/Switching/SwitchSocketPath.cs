// Where a named switch listens: $XDG_RUNTIME_DIR/ringvisor/NAME.sock, or /tmp/ringvisor-$UID/NAME.sock when
// XDG_RUNTIME_DIR is not set. Both the switch and the VMs that join it compute the path the same way.
using Ringvisor.Net.Native;

namespace Ringvisor.Net.Switching;

public static class SwitchSocketPath
{
    /// <summary>sun_path is 108 bytes including the terminating NUL (unix(7)).</summary>
    private const int MaxSocketPathBytes = 107;

    /// <exception cref="ArgumentException">The name is empty, has characters other than letters, digits, '.', '_', '-', or makes the path too long.</exception>
    public static string For(string name)
    {
        Validate(name);
        string path = Path.Combine(Directory(), name + ".sock");
        if (System.Text.Encoding.UTF8.GetByteCount(path) > MaxSocketPathBytes)
        {
            throw new ArgumentException($"switch socket path '{path}' is longer than a UNIX socket path may be ({MaxSocketPathBytes} bytes)");
        }

        return path;
    }

    /// <summary>The directory holding switch sockets (not created here).</summary>
    public static string Directory()
    {
        string? runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        return string.IsNullOrEmpty(runtime)
            ? $"/tmp/ringvisor-{NetNative.GetEffectiveUserId()}"
            : Path.Combine(runtime, "ringvisor");
    }

    public static void Validate(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 64 || name is "." or ".." ||
            !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
        {
            throw new ArgumentException($"'{name}' is not a valid switch name (use 1-64 letters, digits, '.', '_' or '-')");
        }
    }
}
