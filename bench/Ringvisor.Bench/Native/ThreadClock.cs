// The calling thread's CPU time (clock_gettime(CLOCK_THREAD_CPUTIME_ID), Linux): time KVM_RUN spends in the kernel
// and the guest counts too. On a loaded machine it separates the work done from the time spent waiting for a core.
using System.Runtime.InteropServices;

namespace Ringvisor.Bench.Native;

internal static partial class ThreadClock
{
    private const int ClockThreadCpuTimeId = 3; // linux/time.h CLOCK_THREAD_CPUTIME_ID

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>CPU time consumed by the calling thread, in nanoseconds.</summary>
    public static long NowNanoseconds()
    {
        _ = clock_gettime(ClockThreadCpuTimeId, out Timespec t);
        return (t.Seconds * 1_000_000_000) + t.Nanoseconds;
    }

    [LibraryImport("libc")]
    private static partial int clock_gettime(int clockId, out Timespec time);
}
