// libc calls for disk images: open without .NET's implicit advisory lock (we take our own), flock, fsync, fallocate.
using System.Runtime.InteropServices;

namespace Ringvisor.Devices.Virtio.Block.Native;

internal static partial class FileNative
{
    public const int ORdOnly = 0x0;
    public const int ORdWr = 0x2;
    public const int OCloExec = 0x80000;

    public const int LockSh = 1;
    public const int LockEx = 2;
    public const int LockNb = 4;

    public const int ENoEnt = 2;
    public const int EIntr = 4;
    public const int EAcces = 13;
    public const int EWouldBlock = 11;
    public const int EIsDir = 21;
    public const int ERoFs = 30;
    public const int EOpNotSupp = 95;

    /// <summary>fallocate(2) modes (linux/falloc.h).</summary>
    public const int FallocKeepSize = 0x01;
    public const int FallocPunchHole = 0x02;
    public const int FallocZeroRange = 0x10;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    public static partial int Flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(int fd, int mode, long offset, long length);
}
