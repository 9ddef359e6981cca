namespace Ringvisor.Core.Vm;

/// <summary>Why a VM stopped running.</summary>
public enum VmStopReason
{
    /// <summary>Still running / not stopped.</summary>
    None = 0,

    /// <summary>The guest powered off (ACPI, or the hypercall ABI's exit).</summary>
    PowerOff,

    /// <summary>The guest asked for a reset (i8042 pulse, port 0xCF9, triple fault treated as reset).</summary>
    Reset,

    /// <summary>A triple fault / KVM_EXIT_SHUTDOWN.</summary>
    TripleFault,

    /// <summary>The guest wrote the isa-debug-exit port; the exit status is (value &lt;&lt; 1) | 1.</summary>
    DebugExit,

    /// <summary>Every vCPU halted with interrupts disabled: nothing can wake the guest.</summary>
    HaltedForever,

    /// <summary>The user quit (Ctrl-A X, SIGINT, API).</summary>
    UserQuit,

    /// <summary>The engine reported an error it cannot continue from.</summary>
    EngineError,
}
