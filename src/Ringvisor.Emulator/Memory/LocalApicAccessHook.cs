// Routes a vCPU's accesses to its xAPIC MMIO page (IA32_APIC_BASE, Intel SDM Vol. 3A §10.4.4) to its local APIC.
using Ringvisor.Core.Interrupts;

namespace Ringvisor.Emulator.Memory;

/// <summary>Adapts a vCPU's <see cref="ILocalInterruptController"/> into an <see cref="IPhysicalAccessHook"/>.</summary>
public sealed class LocalApicAccessHook(ILocalInterruptController apic) : IPhysicalAccessHook
{
    private const ulong PageMask = ~0xFFFUL;

    public bool Claims(ulong physicalAddress) => apic.MmioBase is { } b && (physicalAddress & PageMask) == (b & PageMask);

    public void Read(ulong physicalAddress, Span<byte> data) => apic.Read(physicalAddress & 0xFFF, data);

    public void Write(ulong physicalAddress, ReadOnlySpan<byte> data) => apic.Write(physicalAddress & 0xFFF, data);
}
