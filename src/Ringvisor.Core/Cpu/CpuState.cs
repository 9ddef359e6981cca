namespace Ringvisor.Core.Cpu;

/// <summary>
/// The engine-neutral architectural state a loader hands to a vCPU (and that snapshots will carry).
/// MSRs listed here are written after the registers.
/// </summary>
public sealed class CpuState
{
    public CpuRegisters Registers;
    public SystemRegisters System = SystemRegisters.Reset();

    /// <summary>MSR index/value pairs to load (e.g. IA32_MISC_ENABLE, PAT).</summary>
    public Dictionary<uint, ulong> Msrs { get; } = [];

    public CpuState Clone()
    {
        var c = new CpuState { Registers = Registers, System = System };
        foreach (var kv in Msrs)
        {
            c.Msrs[kv.Key] = kv.Value;
        }

        return c;
    }
}
