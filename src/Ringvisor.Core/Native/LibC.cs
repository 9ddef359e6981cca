// P/Invoke surface of libc used by Core (anonymous mappings for guest RAM, the kernel's random numbers).
using System.Runtime.InteropServices;

namespace Ringvisor.Core.Native;

internal static partial class LibC
{
    public const int ProtRead = 0x1;
    public const int ProtWrite = 0x2;
    public const int MapPrivate = 0x02;
    public const int MapAnonymous = 0x20;
    public const int MapNoReserve = 0x4000;
    public const int MadvHugepage = 14;
    public static readonly nint MapFailed = -1;

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int munmap(nint addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int madvise(nint addr, nuint length, int advice);

    /// <summary>getrandom(2) (Linux 3.17, glibc 2.25): fills from the kernel's CSPRNG; flags 0 blocks only until the
    /// pool is first initialised.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static unsafe partial nint getrandom(byte* buffer, nuint length, uint flags);
}
