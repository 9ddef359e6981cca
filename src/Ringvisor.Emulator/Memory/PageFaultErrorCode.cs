// The #PF error code (Intel SDM Vol. 3A §4.7, Figure 4-12).
namespace Ringvisor.Emulator.Memory;

[Flags]
public enum PageFaultErrorCode : uint
{
    None = 0,

    /// <summary>P (bit 0): 0 = non-present page, 1 = protection violation or reserved bit.</summary>
    Present = 1 << 0,

    /// <summary>W/R (bit 1): the access was a write.</summary>
    Write = 1 << 1,

    /// <summary>U/S (bit 2): a user-mode access (CPL 3 and not an implicit supervisor access).</summary>
    User = 1 << 2,

    /// <summary>RSVD (bit 3): a reserved bit was set in some paging-structure entry.</summary>
    ReservedBit = 1 << 3,

    /// <summary>I/D (bit 4): an instruction fetch, reported only with CR4.SMEP = 1 or with PAE/4-level paging and EFER.NXE = 1.</summary>
    InstructionFetch = 1 << 4,

    /// <summary>PK (bit 5): protection-key violation. Never set: protection keys are not implemented.</summary>
    ProtectionKey = 1 << 5,
}
