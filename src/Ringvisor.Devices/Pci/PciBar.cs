using Ringvisor.Core.Bus;

namespace Ringvisor.Devices.Pci;

/// <summary>
/// A BAR a function implements: its index, what it decodes, its size (a power of two) and the register logic
/// behind it. The address lives in configuration space; the bus maps <see cref="Region"/> there while decoding is on.
/// </summary>
public sealed record PciBar(int Index, PciBarKind Kind, ulong Size, IBusDevice Region, bool Prefetchable = false)
{
    public bool IsMemory => Kind != PciBarKind.Io;
}
