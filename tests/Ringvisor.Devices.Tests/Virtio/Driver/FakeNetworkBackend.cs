// A network backend that records what the NIC sends and lets the test inject received frames.
using System.Collections.Concurrent;
using Ringvisor.Core.Net;

namespace Ringvisor.Devices.Tests.Virtio.Driver;

internal sealed class FakeNetworkBackend : INetworkBackend
{
    private NetworkFrameReceiver? _receiver;
    private bool _linkUp = true;

    public ConcurrentQueue<byte[]> Sent { get; } = new();

    public string Description => "fake";

    public event Action? LinkChanged;

    public bool LinkUp
    {
        get => _linkUp;
        set
        {
            _linkUp = value;
            LinkChanged?.Invoke();
        }
    }

    public bool Started => _receiver is not null;

    public void Start(NetworkFrameReceiver receiver) => _receiver = receiver;

    public bool Send(ReadOnlySpan<byte> frame)
    {
        Sent.Enqueue(frame.ToArray());
        return true;
    }

    public void Inject(ReadOnlySpan<byte> frame) => _receiver?.Invoke(frame);

    public void Dispose()
    {
    }
}
