namespace Ringvisor.TestSupport;

/// <summary>Whether the host's /dev/kvm can be used by the tests.</summary>
public static class HostKvm
{
    private static readonly Lazy<string?> s_reason = new(Probe);

    /// <summary>Null when /dev/kvm is usable; otherwise why not.</summary>
    public static string? UnavailableReason => s_reason.Value;

    /// <summary>True when /proc/cpuinfo lists vmx or svm.</summary>
    public static bool HasHardwareVirtualization
    {
        get
        {
            try
            {
                return File.ReadLines("/proc/cpuinfo").Any(l => l.StartsWith("flags", StringComparison.Ordinal) &&
                    l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Any(f => f is "vmx" or "svm"));
            }
            catch (IOException)
            {
                return false;
            }
        }
    }

    private static string? Probe()
    {
        if (Environment.GetEnvironmentVariable("RINGVISOR_SKIP_KVM") == "1")
        {
            return "RINGVISOR_SKIP_KVM=1";
        }

        if (!File.Exists("/dev/kvm"))
        {
            return "/dev/kvm does not exist on this host";
        }

        try
        {
            using var f = new FileStream("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
            return null;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            return $"/dev/kvm cannot be opened read-write: {e.Message}";
        }
    }
}
