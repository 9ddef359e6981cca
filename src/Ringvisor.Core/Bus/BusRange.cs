namespace Ringvisor.Core.Bus;

/// <summary>A registered window [Start, Start+Length) on a bus.</summary>
public sealed record BusRange(ulong Start, ulong Length, IBusDevice Device, string Name)
{
    public ulong End => Start + Length;

    public bool Overlaps(ulong start, ulong length) => start < End && Start < start + length;
}
