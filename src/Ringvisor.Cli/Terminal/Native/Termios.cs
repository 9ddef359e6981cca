// libc terminal control used to put the host terminal in raw mode while a guest owns the console.
using System.Runtime.InteropServices;

namespace Ringvisor.Cli.Terminal.Native;

internal static partial class Termios
{
    /// <summary>sizeof(struct termios) on Linux/glibc x86-64 is 60; the buffer is padded for safety.</summary>
    public const int BufferSize = 128;
    public const int TcsaNow = 0;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int tcgetattr(int fd, Span<byte> termios);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int tcsetattr(int fd, int optionalActions, ReadOnlySpan<byte> termios);

    [LibraryImport("libc")]
    public static partial void cfmakeraw(Span<byte> termios);

    [LibraryImport("libc")]
    public static partial int isatty(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, Span<byte> buffer, nint count);
}
