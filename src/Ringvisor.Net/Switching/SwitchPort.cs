// One port of the learning switch: its link state, its counters, and how frames leave through it.
namespace Ringvisor.Net.Switching;

public sealed class SwitchPort
{
    private readonly SwitchPortTransmit _transmit;
    private long _rxFrames, _rxBytes, _txFrames, _txBytes, _rxDropped, _txDropped, _malformed;
    private volatile bool _linkUp = true;

    internal SwitchPort(int id, string name, SwitchPortTransmit transmit)
    {
        Id = id;
        Name = name;
        _transmit = transmit;
    }

    public int Id { get; }

    public string Name { get; }

    /// <summary>A port whose link is down neither sends nor receives (frames are dropped and counted).</summary>
    public bool LinkUp
    {
        get => _linkUp;
        set => _linkUp = value;
    }

    public bool Removed { get; internal set; }

    public PortCounters Counters => new(
        Interlocked.Read(ref _rxFrames), Interlocked.Read(ref _rxBytes), Interlocked.Read(ref _txFrames), Interlocked.Read(ref _txBytes),
        Interlocked.Read(ref _rxDropped), Interlocked.Read(ref _txDropped), Interlocked.Read(ref _malformed));

    public override string ToString() => $"port {Id} ({Name})";

    internal void CountRx(int bytes)
    {
        Interlocked.Increment(ref _rxFrames);
        Interlocked.Add(ref _rxBytes, bytes);
    }

    internal void CountRxDrop() => Interlocked.Increment(ref _rxDropped);

    internal void CountMalformed()
    {
        Interlocked.Increment(ref _malformed);
        Interlocked.Increment(ref _rxDropped);
    }

    internal void Send(ReadOnlySpan<byte> frame)
    {
        if (!_linkUp || Removed)
        {
            Interlocked.Increment(ref _txDropped);
            return;
        }

        if (_transmit(frame))
        {
            Interlocked.Increment(ref _txFrames);
            Interlocked.Add(ref _txBytes, frame.Length);
        }
        else
        {
            Interlocked.Increment(ref _txDropped);
        }
    }
}
