namespace Ringvisor.Emulator.Memory;

/// <summary>A guest-visible fault produced by a linear access (design principle 3: faults are values).</summary>
/// <param name="Kind">Which exception to raise.</param>
/// <param name="ErrorCode">The #PF error code (<see cref="PageFaultErrorCode"/> bits); 0 for other kinds.</param>
/// <param name="Address">The faulting linear address: the value for CR2 on #PF.</param>
public readonly record struct MmuFault(MmuFaultKind Kind, PageFaultErrorCode ErrorCode, ulong Address)
{
    public bool IsFault => Kind != MmuFaultKind.None;

    /// <summary>Exception vector: 14 for #PF, 13 for a non-canonical address (#GP), -1 for none.</summary>
    public int Vector => Kind switch
    {
        MmuFaultKind.PageFault => 14,
        MmuFaultKind.NonCanonical => 13,
        _ => -1,
    };
}
