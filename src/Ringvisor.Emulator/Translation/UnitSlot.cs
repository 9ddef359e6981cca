// Translation state of one decoded instruction of a vCPU's CodePage (parallel to CodePage.Ops): the interpreter counts
// executions of the instruction here and, once hot, the slot holds the unit entered at it. A CodePage stands for one
// generation of one physical page and is reached only through a validated fetch (MMU epoch, page generation), so a
// slot needs no validity checks of its own: a rewritten page gets a new CodePage with fresh slots.
namespace Ringvisor.Emulator.Translation;

internal struct UnitSlot
{
    public TranslatedUnit? Unit;
    public int Heat;

    /// <summary>Not translatable (rejected on this page generation): stop counting.</summary>
    public bool Failed;

    /// <summary>Queued for the background translator, as the entry <see cref="PendingEntry"/> or inside its region.</summary>
    public bool Pending;

    /// <summary>Page offset of the pending unit's entry: a slot inside the region of a queued unit waits for that unit
    /// rather than queueing a unit of its own (which the worker would compile for nothing once the first one runs).</summary>
    public short PendingEntry;
}
