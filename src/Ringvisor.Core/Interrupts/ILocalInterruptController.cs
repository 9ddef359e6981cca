namespace Ringvisor.Core.Interrupts;

/// <summary>
/// The seam between a software CPU (bt engine) and its local APIC (Devices/Platform/LocalApic), defined in Core so
/// the Emulator never references Devices. One instance per vCPU. Under the kvm engine this is unused (KVM has an
/// in-kernel LAPIC). All members may be called from the owning vCPU thread; events arrive from other threads
/// (IOAPIC, other vCPUs' IPIs, timers) and are signalled through <see cref="IVcpuWakeup"/>.
/// </summary>
public interface ILocalInterruptController
{
    /// <summary>Guest-physical base of the xAPIC MMIO page (from IA32_APIC_BASE), or null while the APIC is globally disabled.</summary>
    ulong? MmioBase { get; }

    /// <summary>A maskable interrupt (fixed, or ExtINT from the PIC in virtual-wire mode) is deliverable when RFLAGS.IF = 1.</summary>
    bool HasInterrupt { get; }

    /// <summary>INTA: returns the vector to deliver and moves it IRR → ISR; -1 when nothing is pending any more.</summary>
    int AcknowledgeInterrupt();

    /// <summary>True once per pending NMI.</summary>
    bool TakeNmi();

    /// <summary>True once per pending INIT IPI.</summary>
    bool TakeInit();

    /// <summary>Takes a pending start-up IPI's vector.</summary>
    bool TryTakeStartup(out byte vector);

    /// <summary>xAPIC register access at <paramref name="offset"/> within the 4 KiB page.</summary>
    void Read(ulong offset, Span<byte> data);

    void Write(ulong offset, ReadOnlySpan<byte> data);

    /// <summary>APIC-owned MSRs: IA32_APIC_BASE (0x1B), IA32_TSC_DEADLINE (0x6E0), x2APIC 0x800-0x8FF when supported.</summary>
    bool TryReadMsr(uint msr, out ulong value);

    /// <returns>False when the MSR is not the APIC's or the value is invalid (the CPU raises #GP).</returns>
    bool TryWriteMsr(uint msr, ulong value);

    /// <summary>The engine registers how to wake its (possibly halted) vCPU thread when an event arrives.</summary>
    void AttachWakeup(IVcpuWakeup wakeup);
}
