// KVM cannot be used on this host: the device is missing or not accessible, or lacks the API Ringvisor needs.
// The message says what is wrong and what to do about it.
namespace Ringvisor.Kvm;

public sealed class KvmUnavailableException : KvmException
{
    public KvmUnavailableException(string message)
        : base(message)
    {
    }

    public KvmUnavailableException(string message, Exception inner)
        : base(message, inner)
    {
    }

    public KvmUnavailableException()
    {
    }
}
