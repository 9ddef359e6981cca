// Records GSI levels and MSI messages so tests can assert which interrupts a device raised.
using System.Collections.Concurrent;
using Ringvisor.Core.Interrupts;

namespace Ringvisor.Devices.Tests.Virtio.Driver;

internal sealed class FakeInterruptController : IInterruptController
{
    private readonly ConcurrentDictionary<int, bool> _levels = new();

    public ConcurrentQueue<(ulong Address, uint Data)> Msis { get; } = new();

    public ConcurrentQueue<(int Gsi, bool Level)> GsiEvents { get; } = new();

    public bool Level(int gsi) => _levels.TryGetValue(gsi, out bool l) && l;

    public int MsiCount(uint data) => Msis.Count(m => m.Data == data);

    public void SetGsi(int gsi, bool level)
    {
        _levels[gsi] = level;
        GsiEvents.Enqueue((gsi, level));
    }

    public void SignalMsi(ulong address, uint data) => Msis.Enqueue((address, data));
}
