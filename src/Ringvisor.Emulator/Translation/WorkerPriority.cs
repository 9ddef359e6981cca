// Lowers the calling thread's scheduling priority (Linux nice value of the thread). The background translator runs
// at a lower priority than the vCPU threads: on a host with few cores the vCPU, the translator and the runtime's own
// tier-up compiler compete, and the vCPU is the thread whose progress the guest sees.
using System.Runtime.InteropServices;

namespace Ringvisor.Emulator.Translation;

internal static partial class WorkerPriority
{
    private const int PrioProcess = 0;

    /// <summary>Nice value for the translator thread (0 = as the vCPUs; RINGVISOR_BT_WORKER_NICE overrides).</summary>
    public static int TranslatorNice =>
        int.TryParse(Environment.GetEnvironmentVariable("RINGVISOR_BT_WORKER_NICE"), out int n) ? Math.Clamp(n, 0, 19) : DefaultNice;

    private const int DefaultNice = 5;

    /// <summary>Sets the current thread's nice value; false where the host does not allow it (not Linux, or an
    /// error), which leaves the priority as it was.</summary>
    public static bool TryLowerCurrentThread(int nice)
    {
        if (nice <= 0 || !OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            return setpriority(PrioProcess, gettid(), nice) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setpriority(int which, int who, int prio);

    [LibraryImport("libc")]
    private static partial int gettid();
}
