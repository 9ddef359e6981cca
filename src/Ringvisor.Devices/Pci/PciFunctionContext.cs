using Ringvisor.Core.Interrupts;

namespace Ringvisor.Devices.Pci;

/// <summary>What the bus gives a function when it is attached: its address, its INTx# wire and the MSI sink.</summary>
public sealed record PciFunctionContext(PciAddress Address, IInterruptLine Intx, int IntxGsi, IInterruptController Interrupts);
