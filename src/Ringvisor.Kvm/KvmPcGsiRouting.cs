// The GSI routing table of a PC whose firmware tables (Machine/Boot/MpTable.cs, AcpiTables.cs) say "ISA IRQ 0 arrives
// on IOAPIC pin 2" (an interrupt source override, as on every PC since the 82093AA: the 8254 output is wired to pin 2
// because pin 0 carries the 8259's INTR in virtual-wire mode) and "IRQ 2 is the 8259 cascade".
//
// KVM's default table (kvm_setup_default_irq_routing, arch/x86/kvm/irq_comm.c) routes GSI n to IOAPIC pin n for
// every n, so the in-kernel PIT (which raises GSI 0) would reach pin 0 while the guest, following the override,
// programs pin 2: Linux then reports "..MP-BIOS bug: 8254 timer not connected to IO-APIC". The same mapping also
// decides which GSI an IOAPIC EOI acknowledges, and the PIT in reinject mode waits for the ack of GSI 0 before its
// next tick. QEMU programs the equivalent table (kvm_pc_setup_irq_routing, hw/i386/kvm/ioapic.c).
using System.Collections.Immutable;
using Ringvisor.Kvm.Native;

namespace Ringvisor.Kvm;

public static class KvmPcGsiRouting
{
    /// <summary>ISA IRQs 0-15, wired to both 8259s (IRQ n on master input n for n &lt; 8, slave input n - 8 above).</summary>
    public const int IsaIrqCount = 16;

    /// <summary>Inputs per 8259 (8259A datasheet: IR0-IR7).</summary>
    public const int PicInputs = 8;

    /// <summary>IOAPIC pins (KVM_IOAPIC_NUM_PINS, arch/x86/kvm/ioapic.h; 82093AA datasheet: 24 inputs).</summary>
    public const int IoApicPins = KvmIrqChip.GsiCount;

    /// <summary>The 8254 PIT's ISA IRQ (GSI 0): on the IOAPIC it arrives on <see cref="TimerIoApicPin"/>.</summary>
    public const int TimerGsi = 0;

    /// <summary>MP Spec 1.4 §5.3 / ACPI MADT interrupt source override: ISA IRQ 0 on IOAPIC INTIN2.</summary>
    public const int TimerIoApicPin = 2;

    /// <summary>ISA IRQ 2 is the master 8259's cascade input: no device raises it and its IOAPIC pin carries IRQ 0.</summary>
    public const int CascadeGsi = 2;

    /// <summary>
    /// The table: GSIs 0-15 to their 8259 input, and to IOAPIC pin = GSI except GSI 0 (pin 2) and GSI 2 (no IOAPIC
    /// route); GSIs 16-23 (PCI) to IOAPIC pins 16-23 only. GSI 2 keeps its master-8259 route as in KVM's default
    /// table (QEMU leaves GSI 2 with no route at all; nothing raises it either way).
    /// </summary>
    public static ImmutableArray<KvmGsiRoute> Routes { get; } = Build();

    /// <summary>The IOAPIC pin GSI <paramref name="gsi"/> reaches under <see cref="Routes"/>, or null for none.</summary>
    public static int? IoApicPinOf(int gsi) =>
        (uint)gsi >= IoApicPins ? null
        : gsi == TimerGsi ? TimerIoApicPin
        : gsi == CascadeGsi ? null
        : gsi;

    private static ImmutableArray<KvmGsiRoute> Build()
    {
        var routes = ImmutableArray.CreateBuilder<KvmGsiRoute>();
        for (int gsi = 0; gsi < IoApicPins; gsi++)
        {
            if (gsi < IsaIrqCount)
            {
                var pic = gsi < PicInputs ? KvmIrqchipId.PicMaster : KvmIrqchipId.PicSlave;
                routes.Add(new KvmGsiRoute((uint)gsi, pic, (uint)(gsi % PicInputs)));
            }

            if (IoApicPinOf(gsi) is int pin)
            {
                routes.Add(new KvmGsiRoute((uint)gsi, KvmIrqchipId.IoApic, (uint)pin));
            }
        }

        return routes.ToImmutable();
    }
}
