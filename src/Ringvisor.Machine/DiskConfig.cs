namespace Ringvisor.Machine;

/// <summary>A virtio-blk disk: --disk PATH[,readonly].</summary>
public sealed record DiskConfig(string Path, bool ReadOnly)
{
    /// <summary>Parses "PATH[,readonly|ro]"; returns null and an error for anything else.</summary>
    public static DiskConfig? Parse(string text, out string? error)
    {
        error = null;
        var parts = text.Split(',');
        if (parts[0].Length == 0)
        {
            error = $"--disk '{text}': missing path";
            return null;
        }

        bool ro = false;
        foreach (var p in parts.Skip(1))
        {
            if (p is "readonly" or "ro")
            {
                ro = true;
            }
            else
            {
                error = $"--disk '{text}': unknown option '{p}' (expected 'readonly')";
                return null;
            }
        }

        return new DiskConfig(parts[0], ro);
    }
}
