// A [Fact] that runs only where a real Linux bzImage is at hand: $RINGVISOR_TEST_KERNEL, the newest /boot/vmlinuz-*
// of this host, or the kernel of the cached default guest image. Skipped with the reason shown otherwise.
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Boot;

[AttributeUsage(AttributeTargets.Method)]
public sealed class HostKernelFactAttribute : FactAttribute
{
    public HostKernelFactAttribute()
    {
        if (Path is null)
        {
            Skip = "no real kernel: set RINGVISOR_TEST_KERNEL, install one at /boot/vmlinuz-*, or build the default guest image";
        }
    }

    public static string? Path { get; } = Find();

    private static string? Find()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable("RINGVISOR_TEST_KERNEL");
        if (!string.IsNullOrEmpty(fromEnvironment) && File.Exists(fromEnvironment))
        {
            return fromEnvironment;
        }

        try
        {
            string? installed = Directory.Exists("/boot")
                ? Directory.GetFiles("/boot", "vmlinuz-*").Order(StringComparer.Ordinal).LastOrDefault()
                : null;
            return installed ?? DefaultGuestImage.TryGetCached()?.Kernel;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
