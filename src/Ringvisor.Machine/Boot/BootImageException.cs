// The one error a boot loader raises for a kernel, initrd or module it cannot use.
namespace Ringvisor.Machine.Boot;

/// <summary>
/// A boot image (kernel, initrd or module) is missing, unreadable, malformed or does not fit the guest. The message is
/// one line, "&lt;file&gt;: &lt;reason&gt;", suitable to print to the user as is. Thrown before any vCPU runs.
/// </summary>
public sealed class BootImageException : Exception
{
    public BootImageException()
        : this("(unknown file)", "cannot be booted")
    {
    }

    public BootImageException(string message)
        : base(message)
    {
        FilePath = "";
        Reason = message;
    }

    public BootImageException(string message, Exception innerException)
        : base(message, innerException)
    {
        FilePath = "";
        Reason = message;
    }

    public BootImageException(string filePath, string reason, Exception? innerException = null)
        : base($"{filePath}: {reason}", innerException)
    {
        FilePath = filePath;
        Reason = reason;
    }

    /// <summary>The file the problem is about, as the user named it.</summary>
    public string FilePath { get; }

    /// <summary>What is wrong, without the file name.</summary>
    public string Reason { get; }
}
