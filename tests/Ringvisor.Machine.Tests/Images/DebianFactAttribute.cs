// A [Fact] that needs the default guest image: skipped, with the reason shown, when it is not cached and cannot be
// built here (apt missing, or no Debian mirror reachable).
namespace Ringvisor.Machine.Tests.Images;

[AttributeUsage(AttributeTargets.Method)]
public sealed class DebianFactAttribute : FactAttribute
{
    public DebianFactAttribute()
    {
        if (DebianMirror.UnavailableReason is { } why)
        {
            Skip = why;
        }
    }
}
