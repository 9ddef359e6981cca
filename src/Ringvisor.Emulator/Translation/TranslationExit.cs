// Why a translated unit returned to the dispatcher (CpuTranslation.cs); counted per reason in BtStats.
namespace Ringvisor.Emulator.Translation;

internal enum TranslationExit
{
    /// <summary>Ran into an instruction the unit does not contain (unsupported, on another page, or beyond the size limit).</summary>
    End,

    /// <summary>A direct branch, call or fall-through left the unit.</summary>
    Branch,

    /// <summary>RET: the target is only known at run time.</summary>
    Indirect,

    /// <summary>A backward branch found the attention flag set or the batch's instruction budget spent.</summary>
    Budget,

    /// <summary>A memory access faulted; the fault is pending and RIP is the faulting instruction.</summary>
    Fault,

    /// <summary>A store changed the generation of the unit's own code page (self-modifying code) or raised attention.</summary>
    Store,

    /// <summary>An instruction left to the interpreter from its start, with RIP at it: a load whose inline TLB test
    /// missed (TLB miss, MMIO, an access straddling two pages), or a rare case (non-canonical branch target, #DE, SSE
    /// disabled, a page-crossing instruction's next page remapped).</summary>
    Fallback,
}
