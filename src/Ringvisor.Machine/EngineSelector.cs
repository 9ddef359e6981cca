// Chooses the engine for --engine auto: kvm only where the host CPU itself offers hardware virtualization.
// /dev/kvm alone is not enough: on some hosts it is a paravirtual KVM that emulates guest CPL 0 in software and
// cannot boot a stock kernel (see README, "Hosts").
namespace Ringvisor.Machine;

public static class EngineSelector
{
    /// <summary>Resolves <paramref name="requested"/>; <paramref name="why"/> explains an automatic choice.</summary>
    public static EngineKind Resolve(EngineKind requested, out string why, string cpuinfoPath = "/proc/cpuinfo", string kvmPath = "/dev/kvm")
    {
        if (requested != EngineKind.Auto)
        {
            why = $"--engine {requested.ToString().ToLowerInvariant()} requested";
            return requested;
        }

        bool hw = HostHasHardwareVirtualization(cpuinfoPath);
        if (hw && File.Exists(kvmPath))
        {
            why = "host CPU has vmx/svm and /dev/kvm exists";
            return EngineKind.Kvm;
        }

        why = hw ? $"{kvmPath} is missing" : "host CPU does not advertise vmx/svm";
        return EngineKind.Bt;
    }

    /// <summary>True when a "flags" line of /proc/cpuinfo lists vmx (Intel VT-x) or svm (AMD-V).</summary>
    public static bool HostHasHardwareVirtualization(string cpuinfoPath = "/proc/cpuinfo")
    {
        try
        {
            foreach (string line in File.ReadLines(cpuinfoPath))
            {
                if (!line.StartsWith("flags", StringComparison.Ordinal))
                {
                    continue;
                }

                int colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon < 0)
                {
                    continue;
                }

                foreach (string flag in line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (flag is "vmx" or "svm")
                    {
                        return true;
                    }
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return false;
    }
}
