namespace Ringvisor.Machine;

/// <summary>The vCPU thread's state machine (Firecracker vstate/vcpu): commands move it, the thread obeys at exits.</summary>
public enum VcpuRunState
{
    Running,
    Paused,
    Stopped,
}
