// What a bt vCPU needs from the outside world: memory, buses, its local APIC, time, VM control and shared caches.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Interrupts;
using Ringvisor.Core.Memory;
using Ringvisor.Core.Vm;
using Ringvisor.Emulator.Memory;

namespace Ringvisor.Emulator;

/// <summary>
/// The environment shared by the vCPUs of one bt engine (or built directly by tests for a standalone vCPU).
/// </summary>
public sealed class CpuHost
{
    public CpuHost(GuestMemory memory, IoBus pio, IoBus mmio)
    {
        Memory = memory;
        Pio = pio;
        Mmio = mmio;
        MemorySystem = new MemorySystem(memory, mmio);
    }

    public GuestMemory Memory { get; }

    public IoBus Pio { get; }

    public IoBus Mmio { get; }

    public IVmControl? Control { get; init; }

    public ITimeSource Time { get; init; } = new HostTimeSource();

    public BtOptions Options { get; init; } = new();

    public BtStats Stats { get; } = new();

    public int VcpuCount { get; init; } = 1;

    /// <summary>Per-vCPU local APICs (null entries or a null list: no APIC, interrupts only through tests).</summary>
    public IReadOnlyList<ILocalInterruptController>? LocalApics { get; init; }

    public IReadOnlyDictionary<(uint Leaf, uint Subleaf), (uint Eax, uint Ebx, uint Ecx, uint Edx)>? CpuidOverrides { get; init; }

    /// <summary>
    /// The VM side of the software MMU: RAM, the MMIO bus, code-page tracking, the LOCK fallback lock, and the set of
    /// vCPU MMUs (each Cpu creates its own <see cref="Mmu"/> over it).
    /// </summary>
    public MemorySystem MemorySystem { get; }

    /// <summary>
    /// Which guest-physical pages hold decoded code. A store to a marked page (by any vCPU, or reported DMA) bumps its
    /// generation: <see cref="CodePageTracker.PageGeneration"/> by page number is what decoded-code caches compare.
    /// </summary>
    public CodePageTracker CodePages => MemorySystem.CodePages;
}
