// The forwarding database of a learning bridge (IEEE 802.1D §7.8–7.9): source addresses learned per port, aged
// out after AgingTime without traffic (802.1D's default is 300 s).
using Ringvisor.Net.Ethernet;

namespace Ringvisor.Net.Switching;

public sealed class MacTable
{
    public static readonly TimeSpan DefaultAgingTime = TimeSpan.FromSeconds(300);

    private readonly Dictionary<MacAddress, (SwitchPort Port, long LastSeen)> _entries = [];
    private readonly TimeProvider _time;
    private readonly long _agingTicks;

    public MacTable(TimeProvider? time = null, TimeSpan? agingTime = null)
    {
        _time = time ?? TimeProvider.System;
        AgingTime = agingTime ?? DefaultAgingTime;
        _agingTicks = (long)(AgingTime.TotalSeconds * _time.TimestampFrequency);
    }

    public TimeSpan AgingTime { get; }

    public int Count => _entries.Count;

    /// <summary>Records that <paramref name="mac"/> was seen on <paramref name="port"/> now (moves it if it roamed).</summary>
    public void Learn(MacAddress mac, SwitchPort port) => _entries[mac] = (port, _time.GetTimestamp());

    /// <summary>The port <paramref name="mac"/> was last seen on, unless the entry has aged out.</summary>
    public SwitchPort? Lookup(MacAddress mac)
    {
        if (!_entries.TryGetValue(mac, out var e))
        {
            return null;
        }

        if (_time.GetTimestamp() - e.LastSeen > _agingTicks)
        {
            _entries.Remove(mac);
            return null;
        }

        return e.Port;
    }

    /// <summary>Drops every entry that points at <paramref name="port"/> (port removed or link down).</summary>
    public void Flush(SwitchPort port)
    {
        foreach (var kv in _entries.Where(kv => kv.Value.Port == port).ToList())
        {
            _entries.Remove(kv.Key);
        }
    }

    /// <summary>Removes aged entries; returns how many.</summary>
    public int Expire()
    {
        long now = _time.GetTimestamp();
        var old = _entries.Where(kv => now - kv.Value.LastSeen > _agingTicks).Select(kv => kv.Key).ToList();
        foreach (var k in old)
        {
            _entries.Remove(k);
        }

        return old.Count;
    }

    public IReadOnlyDictionary<MacAddress, SwitchPort> Snapshot() => _entries.ToDictionary(kv => kv.Key, kv => kv.Value.Port);
}
