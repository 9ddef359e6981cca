namespace Ringvisor.Core.Interrupts;

/// <summary>Implemented by an engine's vCPU: wakes the vCPU thread (from HLT, or to re-check pending events).</summary>
public interface IVcpuWakeup
{
    void Wake();
}
