// The per-VM side of the bt engine's memory: RAM, the MMIO bus, code-page tracking and the set of vCPU MMUs.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Memory;

namespace Ringvisor.Emulator.Memory;

/// <summary>
/// Shared by all <see cref="Mmu"/>s of one VM. Create one per VM, then one <see cref="Mmu"/> per vCPU over it.
/// </summary>
public sealed class MemorySystem
{
    private readonly object _gate = new();
    private volatile Mmu[] _mmus = [];

    public MemorySystem(GuestMemory memory, IoBus mmio)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(mmio);
        Memory = memory;
        Mmio = mmio;
        CodePages = new CodePageTracker(memory.End);
    }

    public GuestMemory Memory { get; }

    public IoBus Mmio { get; }

    public CodePageTracker CodePages { get; }

    /// <summary>
    /// The VM-wide lock for LOCK-prefixed accesses that cannot be done with a host atomic (misaligned, MMIO, code
    /// pages, 16-byte): see <see cref="AtomicAccess.NeedsLock"/>.
    /// </summary>
    public object AtomicFallbackLock { get; } = new();

    /// <summary>
    /// From any thread: every vCPU flushes its whole TLB at its next <see cref="Mmu.Poll"/>. Call it after taking
    /// the dirty log (GuestMemory.Dirty.TakeDirtyPages): fast-path stores mark a page dirty only when its write
    /// entry is filled, so entries must be refilled for the next round to see the page again.
    /// </summary>
    public void RequestFlushAll()
    {
        foreach (var m in _mmus)
        {
            m.RequestFlush();
        }
    }

    /// <summary>Device DMA or a loader wrote guest RAM: invalidates decoded code in the range.</summary>
    public void InvalidateRange(ulong physicalAddress, ulong length) => CodePages.InvalidateRange(physicalAddress, length);

    internal void Attach(Mmu mmu)
    {
        lock (_gate)
        {
            _mmus = [.. _mmus, mmu];
        }
    }

    internal void Detach(Mmu mmu)
    {
        lock (_gate)
        {
            _mmus = [.. _mmus.Where(m => !ReferenceEquals(m, mmu))];
        }
    }

    /// <summary>A page became code: every other vCPU must drop its fast write entries to it at its next poll.</summary>
    internal void OnCodePageMarked(Mmu origin)
    {
        foreach (var m in _mmus)
        {
            if (!ReferenceEquals(m, origin))
            {
                m.RequestCodeWriteCheck();
            }
        }
    }
}
