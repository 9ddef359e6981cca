// libc calls for TAP devices (/dev/net/tun) and the per-user socket directory.
using System.Runtime.InteropServices;

namespace Ringvisor.Net.Native;

internal static partial class NetNative
{
    public const int ORdWr = 0x2;
    public const int OCloExec = 0x80000;
    public const int ENoEnt = 2;
    public const int EIntr = 4;
    public const int EAgain = 11;
    public const int EAcces = 13;
    public const int EBusy = 16;
    public const int EPerm = 1;

    /// <summary>linux/if_tun.h: TUNSETIFF = _IOW('T', 202, int).</summary>
    public const uint TunSetIff = 0x400454CA;

    /// <summary>linux/if_tun.h: a TAP (Ethernet) device without the 4-byte packet-information prefix.</summary>
    public const short IffTap = 0x0002;
    public const short IffNoPi = 0x1000;

    /// <summary>IFNAMSIZ (linux/if.h).</summary>
    public const int InterfaceNameSize = 16;

    /// <summary>sizeof(struct ifreq) on x86-64.</summary>
    public const int IfReqSize = 40;

    public const short PollIn = 0x1;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static unsafe partial int Ioctl(int fd, nuint request, byte* argument);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static unsafe partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static unsafe partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static unsafe partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }
}
