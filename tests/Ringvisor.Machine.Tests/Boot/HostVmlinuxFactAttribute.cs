// A [Fact] that runs only where a real uncompressed Linux vmlinux is at hand: $RINGVISOR_TEST_VMLINUX, or the vmlinux
// of the cached default guest image. Skipped with the reason shown otherwise.
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Boot;

[AttributeUsage(AttributeTargets.Method)]
public sealed class HostVmlinuxFactAttribute : FactAttribute
{
    public HostVmlinuxFactAttribute()
    {
        if (Path is null)
        {
            Skip = "no real vmlinux: set RINGVISOR_TEST_VMLINUX or build the default guest image";
        }
    }

    public static string? Path { get; } = Find();

    private static string? Find()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable("RINGVISOR_TEST_VMLINUX");
        if (!string.IsNullOrEmpty(fromEnvironment) && File.Exists(fromEnvironment))
        {
            return fromEnvironment;
        }

        try
        {
            return DefaultGuestImage.TryGetCached()?.Vmlinux is { } cached && File.Exists(cached) ? cached : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
