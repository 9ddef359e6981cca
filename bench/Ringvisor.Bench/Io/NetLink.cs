// The VMM arguments that put a receiver and a sender VM on one private LAN, and whatever must run (or be cleaned up)
// for that LAN to exist.
namespace Ringvisor.Bench.Io;

internal sealed class NetLink(IReadOnlyList<string> receiver, IReadOnlyList<string> sender, Action? dispose) : IDisposable
{
    public IReadOnlyList<string> Receiver { get; } = receiver;

    public IReadOnlyList<string> Sender { get; } = sender;

    public void Dispose() => dispose?.Invoke();
}
