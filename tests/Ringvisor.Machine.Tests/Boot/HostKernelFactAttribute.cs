// A [Fact] that runs only where a real Linux kernel image is at hand: $RINGVISOR_TEST_KERNEL, or the newest
// /boot/vmlinuz-* of this host. Skipped with the reason shown otherwise.
namespace Ringvisor.Machine.Tests.Boot;

[AttributeUsage(AttributeTargets.Method)]
public sealed class HostKernelFactAttribute : FactAttribute
{
    public HostKernelFactAttribute()
    {
        if (Path is null)
        {
            Skip = "no real kernel: set RINGVISOR_TEST_KERNEL or install a kernel at /boot/vmlinuz-*";
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
            return Directory.Exists("/boot")
                ? Directory.GetFiles("/boot", "vmlinuz-*").Order(StringComparer.Ordinal).LastOrDefault()
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
