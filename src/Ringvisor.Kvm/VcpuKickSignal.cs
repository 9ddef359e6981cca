// The signal that kicks a vCPU thread out of KVM_RUN (IVcpu.Kick).
//
// How a kick works: Kick() stores 1 in kvm_run.immediate_exit, then pthread_kill()s the vCPU thread with this
// real-time signal.
//   - Thread inside KVM_RUN: the pending signal makes the kernel leave guest mode and return -EINTR (KVM_EXIT_INTR).
//   - Thread about to enter KVM_RUN (or handling an exit in user space): the signal runs the no-op handler and is
//     gone, but immediate_exit is still 1, so the next KVM_RUN returns -EINTR before entering the guest
//     (KVM_CAP_IMMEDIATE_EXIT, api.rst "immediate_exit"). No kick is lost in either order.
// Run() clears immediate_exit when it reports the kick.
//
// The handler is one `ret` (0xC3) on an executable anonymous page, installed with libc sigaction(): it must do
// nothing because the signal only exists to interrupt the ioctl, and it must not be managed code (the runtime
// cannot run on a thread interrupted at an arbitrary point). SA_RESTART is not set, so KVM_RUN is not restarted.
// The number: glibc's SIGRTMIN (34) is CoreCLR's activation-injection signal; Linux x86-64 has SIGRTMAX = 64.
using System.Runtime.InteropServices;
using Ringvisor.Kvm.Native;

namespace Ringvisor.Kvm;

internal static unsafe class VcpuKickSignal
{
    /// <summary>SIGRTMAX - 2 on Linux x86-64.</summary>
    public const int Number = 62;

    private const byte RetInstruction = 0xC3;
    private const int PageSize = 4096;

    private static readonly object s_gate = new();
    private static nint s_handlerPage;

    [ThreadStatic]
    private static bool t_unblocked;

    /// <summary>Installs the no-op handler once per process.</summary>
    /// <exception cref="KvmException">Another component already handles the signal, or the host refused.</exception>
    public static void EnsureInstalled()
    {
        if (Volatile.Read(ref s_handlerPage) != 0)
        {
            return;
        }

        lock (s_gate)
        {
            if (s_handlerPage != 0)
            {
                return;
            }

            SigAction old;
            // SAFETY: sigaction only reads a null action and writes the old one into a local of the glibc layout.
            if (LibC.sigaction(Number, null, &old) != 0)
            {
                throw new KvmException($"sigaction({Number}) query failed: {LibC.Describe(Marshal.GetLastPInvokeError())}");
            }

            if (old.Handler != 0)
            {
                throw new KvmException($"signal {Number} already has a handler; Ringvisor needs it to kick vCPUs out of KVM_RUN");
            }

            nint page = LibC.mmap(0, PageSize, LibC.ProtRead | LibC.ProtWrite, LibC.MapPrivate | LibC.MapAnonymous, -1, 0);
            if (page == LibC.MapFailed)
            {
                throw new KvmException($"mmap of the kick-signal handler page failed: {LibC.Describe(Marshal.GetLastPInvokeError())}");
            }

            // SAFETY: the page was just mapped read-write and is PageSize bytes long.
            *(byte*)page = RetInstruction;
            if (LibC.mprotect(page, PageSize, LibC.ProtRead | LibC.ProtExec) != 0)
            {
                throw new KvmException($"mprotect of the kick-signal handler page failed: {LibC.Describe(Marshal.GetLastPInvokeError())}");
            }

            var action = new SigAction { Handler = page, Flags = 0 };
            // SAFETY: action is a fully initialised glibc struct sigaction with an empty mask.
            if (LibC.sigaction(Number, &action, null) != 0)
            {
                throw new KvmException($"sigaction({Number}) failed: {LibC.Describe(Marshal.GetLastPInvokeError())}");
            }

            Volatile.Write(ref s_handlerPage, page);
        }
    }

    /// <summary>Makes sure the calling thread can receive the signal (a thread may inherit a blocked mask).</summary>
    public static void UnblockOnCurrentThread()
    {
        if (t_unblocked)
        {
            return;
        }

        ulong* set = stackalloc ulong[16];
        new Span<ulong>(set, 16).Clear();
        set[(Number - 1) / 64] |= 1UL << ((Number - 1) % 64);
        // SAFETY: set is a zeroed 1024-bit glibc sigset_t on the stack.
        _ = LibC.pthread_sigmask(LibC.SigUnblock, set, null);
        t_unblocked = true;
    }

    /// <returns>0, or the pthread_kill error number.</returns>
    public static int Send(nuint thread) => LibC.pthread_kill(thread, Number);
}
