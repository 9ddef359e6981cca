// A remembered successor of one exit of a unit (QEMU's TB chaining, as a cached lookup): the linear RIP the exit went
// to, the unit found there, and the vCPU MMU state under which that lookup was valid. The dispatcher takes the link
// instead of looking the RIP up again when RIP, MMU and epoch are the same and the target has not been evicted (a store
// to its page evicts it at once, TranslationCache.OnPageWritten). Units are shared by the vCPUs, which replace links with a single reference store; only Epoch changes in
// place, and only by the vCPU owning Mmu (no other vCPU's check can pass the Mmu test).
using Ringvisor.Emulator.Memory;

namespace Ringvisor.Emulator.Translation;

internal sealed class ChainLink
{
    public ChainLink(ulong rip, TranslatedUnit target, Mmu mmu, long epoch)
    {
        Rip = rip;
        Target = target;
        TargetPhysPage = target.Key.PhysPage;
        Mmu = mmu;
        Epoch = epoch;
    }

    public ulong Rip { get; }

    public TranslatedUnit Target { get; }

    /// <summary>The target's page (a copy of its key's, read when the MMU epoch moved).</summary>
    public ulong TargetPhysPage { get; }

    /// <summary>The vCPU MMU whose translation of <see cref="Rip"/> the lookup used (another vCPU may map it elsewhere).</summary>
    public Mmu Mmu { get; }

    /// <summary><see cref="Mmu"/>'s epoch at the lookup, or at the last check that found RIP's page still mapped to the
    /// target's page in the TLB: unchanged means RIP's linear page still maps where it did.</summary>
    public long Epoch;
}
