// A [Fact] that boots the default guest image under QEMU: skipped, with the reason shown, when QEMU is not
// installed or the image can neither be found in the cache nor built here.
namespace Ringvisor.Machine.Tests.Images;

[AttributeUsage(AttributeTargets.Method)]
public sealed class QemuBootFactAttribute : FactAttribute
{
    public QemuBootFactAttribute()
    {
        if (HostTools.Find("qemu-system-x86_64") is null)
        {
            Skip = "qemu-system-x86_64 is not installed (run scripts/install-deps.sh)";
        }
        else if (DebianMirror.UnavailableReason is { } why)
        {
            Skip = why;
        }
    }
}
