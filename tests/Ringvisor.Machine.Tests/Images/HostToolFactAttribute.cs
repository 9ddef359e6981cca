// A [Fact] that is skipped, with the reason shown, when a host tool it compares against is not installed
// (scripts/install-deps.sh installs them).
namespace Ringvisor.Machine.Tests.Images;

[AttributeUsage(AttributeTargets.Method)]
public sealed class HostToolFactAttribute : FactAttribute
{
    public HostToolFactAttribute(params string[] tools)
    {
        var missing = tools.Where(t => HostTools.Find(t) is null).ToList();
        if (missing.Count > 0)
        {
            Skip = $"host tool(s) not installed: {string.Join(", ", missing)} (run scripts/install-deps.sh)";
        }
    }
}
