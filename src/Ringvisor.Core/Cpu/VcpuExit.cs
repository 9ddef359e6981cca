namespace Ringvisor.Core.Cpu;

/// <summary>Result of one <see cref="IVcpu.Run"/>.</summary>
public readonly record struct VcpuExit(VcpuExitReason Reason, string? Detail = null, int Status = 0);
