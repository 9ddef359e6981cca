// P/Invoke surface of libc used by the kvm engine: file descriptors, ioctl, mappings, eventfd and the signal calls
// behind IVcpu.Kick. Constants are the Linux x86-64 values (asm-generic/fcntl.h, asm-generic/mman-common.h,
// asm-generic/errno-base.h, sys/eventfd.h, asm-generic/poll.h).
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

internal static unsafe partial class LibC
{
    public const int ORdwr = 0x2;
    public const int OCloexec = 0x80000;

    public const int ProtRead = 0x1;
    public const int ProtWrite = 0x2;
    public const int ProtExec = 0x4;
    public const int MapShared = 0x01;
    public const int MapPrivate = 0x02;
    public const int MapAnonymous = 0x20;
    public static readonly nint MapFailed = -1;

    public const int EPerm = 1;
    public const int ENoEnt = 2;
    public const int EIntr = 4;
    public const int E2Big = 7;
    public const int EAgain = 11;
    public const int EAcces = 13;
    public const int ENotTy = 25;

    public const int EfdCloexec = 0x80000;
    public const int EfdNonblock = 0x800;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    /// <summary>ioctl(2) with a pointer or integer argument (the variadic argument is passed in a register either way).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int ioctl(int fd, nuint request, nint arg);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int munmap(nint addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int mprotect(nint addr, nuint length, int prot);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, void* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, void* buffer, nuint count);

    /// <returns>The number of descriptors with events, 0 on timeout, -1 with errno set.</returns>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int poll(PollFd* fds, nuint count, int timeoutMilliseconds);

    [LibraryImport("libc")]
    public static partial nuint pthread_self();

    /// <returns>0, or an error number (pthread functions do not use errno).</returns>
    [LibraryImport("libc")]
    public static partial int pthread_kill(nuint thread, int signal);

    public const int SigUnblock = 1;

    /// <returns>0, or an error number.</returns>
    [LibraryImport("libc")]
    public static partial int pthread_sigmask(int how, ulong* set, ulong* oldSet);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int sigaction(int signal, SigAction* action, SigAction* oldAction);

    /// <summary>strerror-style text for an errno value.</summary>
    public static string Describe(int errno) => $"errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})";
}
