namespace Ringvisor.Machine.Images;

/// <summary>Building the default guest image (or a disk image) failed; the message says which step and why.</summary>
public sealed class GuestImageBuildException : Exception
{
    public GuestImageBuildException()
    {
    }

    public GuestImageBuildException(string message)
        : base(message)
    {
    }

    public GuestImageBuildException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
