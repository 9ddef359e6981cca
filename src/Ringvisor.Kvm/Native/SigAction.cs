// glibc's struct sigaction on x86-64 (bits/sigaction.h): the layout the libc sigaction() wrapper takes, which adds
// SA_RESTORER and its own restorer before calling rt_sigaction.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct SigAction
{
    /// <summary>sa_handler / sa_sigaction; 0 = SIG_DFL, 1 = SIG_IGN.</summary>
    public nint Handler;

    /// <summary>sa_mask: glibc's sigset_t is 1024 bits.</summary>
    public fixed ulong Mask[16];

    public int Flags;
    private readonly int _padding;
    public nint Restorer;

    public const int Size = 152;
}
