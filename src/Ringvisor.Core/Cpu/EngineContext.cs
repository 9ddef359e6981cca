using Ringvisor.Core.Bus;
using Ringvisor.Core.Interrupts;
using Ringvisor.Core.Memory;
using Ringvisor.Core.Vm;

namespace Ringvisor.Core.Cpu;

/// <summary>What the machine gives an engine when it creates it.</summary>
public sealed class EngineContext
{
    public required GuestMemory Memory { get; init; }

    public required IoBus Pio { get; init; }

    public required IoBus Mmio { get; init; }

    public required IVmControl Control { get; init; }

    public required int VcpuCount { get; init; }

    /// <summary>The emulated interrupt controllers (Devices), for engines that do not bring their own; may be null.</summary>
    public IInterruptController? PlatformInterrupts { get; init; }

    /// <summary>
    /// Per-vCPU local APICs for engines without their own (bt); indexed by vCPU index. Null under kvm.
    /// </summary>
    public IReadOnlyList<ILocalInterruptController>? LocalInterruptControllers { get; init; }

    /// <summary>The guest clock for software engines; defaults to the host clock.</summary>
    public ITimeSource Time { get; init; } = new HostTimeSource();

    /// <summary>CPUID leaves the machine wants to override or add, keyed by (leaf, subleaf); optional.</summary>
    public IReadOnlyDictionary<(uint Leaf, uint Subleaf), (uint Eax, uint Ebx, uint Ecx, uint Edx)>? CpuidOverrides { get; init; }
}
