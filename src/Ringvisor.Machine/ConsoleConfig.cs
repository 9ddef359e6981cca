namespace Ringvisor.Machine;

/// <summary>Where a virtio-console port's byte stream goes on the host.</summary>
public enum ConsoleBackendKind
{
    /// <summary>A UNIX stream socket Ringvisor listens on; one client at a time gets the port in both directions.</summary>
    UnixSocket,

    /// <summary>Guest output appended to a file (no input).</summary>
    File,
}

/// <summary>An extra console port (virtio-console, /dev/hvcN in Linux): --virtio-console unix=PATH or file=PATH.</summary>
public sealed record ConsoleConfig(ConsoleBackendKind Kind, string Path)
{
    /// <summary>Parses "unix=PATH" or "file=PATH"; returns null and an error for anything else.</summary>
    public static ConsoleConfig? Parse(string text, out string? error)
    {
        error = null;
        int eq = text.IndexOf('=', StringComparison.Ordinal);
        string key = eq < 0 ? text : text[..eq];
        string path = eq < 0 ? "" : text[(eq + 1)..];
        ConsoleBackendKind? kind = key switch
        {
            "unix" => ConsoleBackendKind.UnixSocket,
            "file" => ConsoleBackendKind.File,
            _ => null,
        };
        if (kind is null)
        {
            error = $"--virtio-console '{text}': expected unix=PATH or file=PATH";
            return null;
        }

        if (path.Length == 0)
        {
            error = $"--virtio-console '{text}': missing path after '{key}='";
            return null;
        }

        return new ConsoleConfig(kind.Value, path);
    }
}
