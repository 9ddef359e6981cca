namespace Ringvisor.Emulator.Memory;

/// <summary>Which exception a failed MMU access must raise.</summary>
public enum MmuFaultKind : byte
{
    None = 0,

    /// <summary>#PF (vector 14) with <see cref="MmuFault.ErrorCode"/>; CR2 = <see cref="MmuFault.Address"/>.</summary>
    PageFault,

    /// <summary>
    /// A non-canonical linear address under 4-level paging: the CPU raises #GP(0), or #SS(0) for stack-segment
    /// references (the core knows which). Normally the core's segmentation check catches this first.
    /// </summary>
    NonCanonical,
}
