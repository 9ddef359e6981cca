namespace Ringvisor.Core.Interrupts;

/// <summary>
/// Where device interrupts go. Under the kvm engine this is the in-kernel irqchip (KVM_IRQ_LINE, KVM_SIGNAL_MSI);
/// under the bt engine it is the emulated PIC/IOAPIC/LAPIC in Devices. Devices only see <see cref="IInterruptLine"/>.
/// </summary>
public interface IInterruptController
{
    /// <summary>Drives global system interrupt <paramref name="gsi"/> (ISA IRQs 0-15 map to GSIs 0-15).</summary>
    void SetGsi(int gsi, bool level);

    /// <summary>Delivers a message-signalled interrupt (address/data as a PCI function would write them).</summary>
    void SignalMsi(ulong address, uint data);
}
