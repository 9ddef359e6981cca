// One slot of a vCPU's direct-mapped lookup table (linear RIP -> translated unit): the interpreter counts executions
// of the instruction at Rip here and, once hot, the slot holds the unit and the decoded page it was entered through
// (a different CodePage object means the page was rewritten or remapped, so the unit is not used).
using Ringvisor.Emulator.Decoding;

namespace Ringvisor.Emulator.Translation;

internal struct UnitLookupEntry
{
    public ulong Rip;
    public CodePage? Page;
    public TranslatedUnit? Unit;
    public int Heat;

    /// <summary>The MMU epoch in which RIP's linear page was last seen to lead to <see cref="Page"/>.</summary>
    public long Epoch;
    public bool Failed;

    /// <summary>Queued for the background translator; <see cref="Page"/> is the page it was requested from.</summary>
    public bool Pending;
}
