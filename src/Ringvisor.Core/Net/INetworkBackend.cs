// The host side of a virtual NIC (virtio-net in Devices, implemented by switch ports and TAP devices in Net).
// Lives in Core because Devices and Net are sibling layers that must not reference each other.
namespace Ringvisor.Core.Net;

/// <summary>
/// Moves Ethernet frames (no virtio header, no FCS) between a virtual NIC and the host. Implementations deliver
/// received frames on their own thread through the receiver given to <see cref="Start"/>.
/// </summary>
public interface INetworkBackend : IDisposable
{
    /// <summary>A human-readable description ("switch lan0 port 3", "tap tap0").</summary>
    string Description { get; }

    /// <summary>Whether the link is up (the NIC reports it in its status field).</summary>
    bool LinkUp { get; }

    /// <summary>Raised (from any thread) when <see cref="LinkUp"/> changes, so the NIC can tell its driver.</summary>
    event Action? LinkChanged;

    /// <summary>Starts delivering received frames to <paramref name="receiver"/>; called once.</summary>
    void Start(NetworkFrameReceiver receiver);

    /// <summary>Sends one frame; returns false when it was dropped (backend gone, frame too large).</summary>
    bool Send(ReadOnlySpan<byte> frame);
}
