// The in-kernel irqchip as Core's IInterruptController: GSIs go through KVM_IRQ_LINE (KvmEngine programs
// KvmPcGsiRouting: GSI 0-15 to the PIC pair and the IOAPIC, GSI 0 on IOAPIC pin 2, GSI 2 on no IOAPIC pin, 16-23 to
// the IOAPIC), MSIs through KVM_SIGNAL_MSI (which needs no route).
using Ringvisor.Core.Interrupts;
using Ringvisor.Kvm.Native;

namespace Ringvisor.Kvm;

public sealed class KvmIrqChip : IInterruptController
{
    /// <summary>KVM_IOAPIC_NUM_PINS (arch/x86/kvm/ioapic.h): GSIs covered by the routing table.</summary>
    public const int GsiCount = 24;

    private readonly KvmVm _vm;
    private long _failedMsis;

    public KvmIrqChip(KvmVm vm)
    {
        _vm = vm;
    }

    /// <summary>MSIs the kernel refused (e.g. a guest-programmed address outside the APIC window).</summary>
    public long FailedMsiCount => Interlocked.Read(ref _failedMsis);

    /// <exception cref="ArgumentOutOfRangeException">The GSI is not wired (a machine configuration error).</exception>
    /// <exception cref="KvmException">The kernel refused the line change.</exception>
    public void SetGsi(int gsi, bool level)
    {
        if ((uint)gsi >= GsiCount)
        {
            throw new ArgumentOutOfRangeException(nameof(gsi), gsi, $"the in-kernel irqchip routes GSIs 0..{GsiCount - 1}");
        }

        int errno = _vm.SetIrqLine((uint)gsi, level);
        if (errno != 0)
        {
            throw new KvmException($"KVM_IRQ_LINE (gsi {gsi}, level {(level ? 1 : 0)}) failed: {LibC.Describe(errno)}") { Errno = errno };
        }
    }

    /// <summary>Address and data come from the guest's MSI/MSI-X programming, so a refusal is counted, not thrown.</summary>
    public void SignalMsi(ulong address, uint data)
    {
        if (_vm.SignalMsi(address, data) < 0)
        {
            Interlocked.Increment(ref _failedMsis);
        }
    }
}
