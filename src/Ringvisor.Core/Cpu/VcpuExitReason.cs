namespace Ringvisor.Core.Cpu;

/// <summary>
/// Why <see cref="IVcpu.Run"/> returned. PIO and MMIO exits are dispatched to the buses inside the engine and do
/// not surface here; only events the machine's vCPU loop must act on do.
/// </summary>
public enum VcpuExitReason
{
    /// <summary><see cref="IVcpu.Kick"/> was called (pause/stop request) or a signal interrupted the run.</summary>
    Kicked,

    /// <summary>The vCPU executed HLT and the engine does not wait for interrupts itself; the machine may park it.</summary>
    Halted,

    /// <summary>Triple fault or shutdown.</summary>
    Shutdown,

    /// <summary>The guest requested a reset through the CPU (e.g. KVM_EXIT_SYSTEM_EVENT reset).</summary>
    Reset,

    /// <summary>The guest powered off through the CPU (KVM_EXIT_SYSTEM_EVENT shutdown, hypercall exit).</summary>
    PowerOff,

    /// <summary>The engine failed (KVM internal error, emulation failure); <see cref="VcpuExit.Detail"/> says why.</summary>
    Error,
}
