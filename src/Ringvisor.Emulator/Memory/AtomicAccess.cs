namespace Ringvisor.Emulator.Memory;

/// <summary>Outcome of <see cref="Mmu.TryGetAtomic"/> for a LOCK-prefixed read-modify-write.</summary>
public enum AtomicAccess : byte
{
    /// <summary>A host pointer to naturally aligned RAM is returned: use Interlocked on it.</summary>
    Direct,

    /// <summary>
    /// Write access was checked (A/D set) but the location is misaligned, MMIO or a tracked code page: take
    /// <see cref="MemorySystem.AtomicFallbackLock"/> and do an ordinary read then write.
    /// </summary>
    NeedsLock,

    /// <summary>The write translation faulted; <see cref="Mmu.LastFault"/> says how.</summary>
    Fault,
}
