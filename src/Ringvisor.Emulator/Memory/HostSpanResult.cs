namespace Ringvisor.Emulator.Memory;

/// <summary>Outcome of <see cref="Mmu.TryGetHostSpan"/>.</summary>
public enum HostSpanResult : byte
{
    /// <summary>The span covers guest RAM directly.</summary>
    Ok,

    /// <summary>The translation faulted; <see cref="Mmu.LastFault"/> says how.</summary>
    Fault,

    /// <summary>Not directly accessible (crosses a page, MMIO, or a write to a tracked code page): use the element-wise path.</summary>
    NotDirect,
}
