using Ringvisor.Core.Interrupts;

namespace Ringvisor.Core.Cpu;

/// <summary>
/// An execution engine for one VM: the kvm engine (hardware-assisted) or the bt engine (software). Everything
/// outside the CPU (memory, buses, devices) belongs to the machine and is shared by both.
/// </summary>
public interface ICpuEngine : IDisposable
{
    /// <summary>"kvm" or "bt".</summary>
    string Name { get; }

    /// <summary>
    /// Where device interrupts are delivered. For kvm this is the in-kernel irqchip; engines without one return
    /// the controller the machine gave them in <see cref="EngineContext.PlatformInterrupts"/>.
    /// </summary>
    IInterruptController Interrupts { get; }

    /// <summary>True when the engine provides the PIC/IOAPIC/LAPIC/PIT itself (KVM's in-kernel irqchip and PIT).</summary>
    bool ProvidesInterruptControllers { get; }

    IVcpu CreateVcpu(int index);
}
