namespace Ringvisor.Core.Cpu;

/// <summary>GDTR / IDTR contents.</summary>
public struct DescriptorTable
{
    public ulong Base;
    public ushort Limit;
}
