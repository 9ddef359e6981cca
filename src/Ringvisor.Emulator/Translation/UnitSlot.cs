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
    /// rather than queueing a unit of its own (which the worker would compile for nothing once the first one runs).
    /// Setting it clears <see cref="PendingJoin"/> (a new pending region).</summary>
    public short PendingEntry
    {
        readonly get => (short)(_pendingBits & OffsetMask);
        set => _pendingBits = value;
    }

    /// <summary>The slot is one of the pending region's joins other than its entry (UnitCompiler.JoinOffsets), where the
    /// unit will most likely offer a side entry: another region being chosen meanwhile ends here instead of compiling
    /// the pending region's code a second time.</summary>
    public bool PendingJoin
    {
        readonly get => (_pendingBits & JoinBit) != 0;
        set => _pendingBits = (short)(value ? _pendingBits | JoinBit : _pendingBits & ~JoinBit);
    }

    // The pending entry's page offset (12 bits) and the join flag, in the two bytes the offset had (the slot stays at
    // 16 bytes).
    private const int OffsetMask = 0xFFF;
    private const int JoinBit = 0x1000;
    private short _pendingBits;
}
