// One entry of the in-kernel GSI routing table: raising GSI Gsi drives input Pin of controller Chip
// (api.rst §4.52 KVM_SET_GSI_ROUTING, type KVM_IRQ_ROUTING_IRQCHIP). A GSI may have one route per controller.
using Ringvisor.Kvm.Native;

namespace Ringvisor.Kvm;

public readonly record struct KvmGsiRoute(uint Gsi, KvmIrqchipId Chip, uint Pin);
