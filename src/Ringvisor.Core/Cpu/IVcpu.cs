namespace Ringvisor.Core.Cpu;

/// <summary>One virtual CPU of an engine. <see cref="Run"/> is called only from the vCPU's own thread.</summary>
public interface IVcpu : IDisposable
{
    int Index { get; }

    /// <summary>Loads architectural state (boot state from a loader, or a restored snapshot).</summary>
    void SetState(CpuState state);

    /// <summary>Reads the architectural state back (only while the vCPU is not running).</summary>
    CpuState GetState();

    /// <summary>
    /// Runs guest code until an event the machine must handle. PIO/MMIO accesses are dispatched to the machine's
    /// buses inside the call. Returns <see cref="VcpuExitReason.Kicked"/> promptly after <see cref="Kick"/>, even
    /// when the guest spins in a tight loop.
    /// </summary>
    VcpuExit Run();

    /// <summary>From any thread: make a running (or about to run) <see cref="Run"/> return soon.</summary>
    void Kick();
}
