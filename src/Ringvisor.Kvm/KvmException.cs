// A KVM ioctl failed where the engine cannot continue: a configuration or programming error, not guest behaviour.
namespace Ringvisor.Kvm;

public class KvmException : Exception
{
    public KvmException(string message)
        : base(message)
    {
    }

    public KvmException(string message, Exception inner)
        : base(message, inner)
    {
    }

    public KvmException()
    {
    }

    /// <summary>The errno of the failed call, or 0.</summary>
    public int Errno { get; init; }
}
