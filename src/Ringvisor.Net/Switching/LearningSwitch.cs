// An L2 learning switch: learns source MACs per port, forwards known unicast to its port, floods broadcast,
// multicast and unknown unicast to every other port whose link is up, never reflects a frame to its ingress
// port, and drops (and counts) malformed frames. Thread-safe: ports deliver from their own threads.
using Ringvisor.Net.Ethernet;

namespace Ringvisor.Net.Switching;

public sealed class LearningSwitch
{
    private readonly object _gate = new();
    private readonly MacTable _macs;
    private readonly List<SwitchPort> _ports = [];
    private int _nextPortId;

    public LearningSwitch(string name, TimeProvider? time = null, TimeSpan? agingTime = null)
    {
        Name = name;
        _macs = new MacTable(time, agingTime);
    }

    public string Name { get; }

    public IReadOnlyList<SwitchPort> Ports
    {
        get
        {
            lock (_gate)
            {
                return [.. _ports];
            }
        }
    }

    public IReadOnlyDictionary<MacAddress, SwitchPort> MacTableSnapshot
    {
        get
        {
            lock (_gate)
            {
                return _macs.Snapshot();
            }
        }
    }

    public SwitchPort AddPort(string name, SwitchPortTransmit transmit)
    {
        lock (_gate)
        {
            var p = new SwitchPort(_nextPortId++, name, transmit);
            _ports.Add(p);
            return p;
        }
    }

    /// <summary>Frees a port: it stops receiving and its learned addresses are forgotten.</summary>
    public void RemovePort(SwitchPort port)
    {
        lock (_gate)
        {
            port.Removed = true;
            _ports.Remove(port);
            _macs.Flush(port);
        }
    }

    /// <summary>Takes a port's link down or up; addresses learned on a port whose link goes down are forgotten.</summary>
    public void SetLinkUp(SwitchPort port, bool up)
    {
        lock (_gate)
        {
            port.LinkUp = up;
            if (!up)
            {
                _macs.Flush(port);
            }
        }
    }

    /// <summary>Removes aged MAC entries (also done lazily on lookup).</summary>
    public int ExpireMacs()
    {
        lock (_gate)
        {
            return _macs.Expire();
        }
    }

    /// <summary>Switches one frame that arrived on <paramref name="ingress"/>.</summary>
    public void Receive(SwitchPort ingress, ReadOnlySpan<byte> frame)
    {
        if (!EthernetFrame.TryParse(frame, out var eth))
        {
            ingress.CountMalformed();
            return;
        }

        SwitchPort[] targets;
        lock (_gate)
        {
            if (ingress.Removed || !ingress.LinkUp)
            {
                ingress.CountRxDrop();
                return;
            }

            ingress.CountRx(frame.Length);
            var src = eth.Source;
            if (!src.IsMulticast)
            {
                _macs.Learn(src, ingress);
            }

            var dst = eth.Destination;
            var known = dst.IsMulticast ? null : _macs.Lookup(dst);
            if (known is not null)
            {
                if (known == ingress)
                {
                    // The destination lives behind the ingress port: filtering, not reflecting (802.1D §7.7.1).
                    ingress.CountRxDrop();
                    return;
                }

                targets = [known];
            }
            else
            {
                targets = [.. _ports.Where(p => p != ingress && p.LinkUp)];
            }
        }

        // Delivery happens outside the lock so a slow port cannot stall the table.
        foreach (var p in targets)
        {
            p.Send(frame);
        }
    }
}
