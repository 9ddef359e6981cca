// The kvm engine: Linux KVM runs the guest; this is the user-space half that sets up the VM (memory slots,
// in-kernel irqchip with PC GSI routing, and PIT) and creates vCPUs whose Run loop hands PIO/MMIO exits to the
// machine's buses.
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Interrupts;
using Ringvisor.Kvm.Native;

namespace Ringvisor.Kvm;

public sealed class KvmEngine : ICpuEngine
{
    /// <summary>
    /// KVM_SET_TSS_ADDR: three pages KVM needs for the real-mode TSS on VMX without unrestricted guest. It lies just
    /// below the BIOS flash window, in the 32-bit PCI hole, where QEMU also puts it (0xFEFFD000 there).
    /// </summary>
    public const uint TssAddress = 0xFFFB_D000;

    /// <summary>KVM_SET_IDENTITY_MAP_ADDR: one page for the EPT identity map, just below the TSS pages.</summary>
    public const ulong IdentityMapAddress = 0xFFFB_C000;

    /// <summary>
    /// Guest-physical pages KVM itself uses (the identity-map page and the three TSS pages, contiguous): not RAM, and
    /// the memory map must mark them reserved so the guest does not hand the range to a PCI BAR (QEMU reserves its
    /// 0xFEFFC000-0xFEFFFFFF the same way).
    /// </summary>
    public static IReadOnlyList<(ulong Address, ulong Size)> ReservedGuestPhysicalRanges { get; } =
        [(IdentityMapAddress, TssAddress + (3 * 0x1000) - IdentityMapAddress)];

    private readonly EngineContext _context;
    private readonly KvmSystem _system;
    private readonly KvmVm _vm;
    private readonly KvmIrqChip _irqChip;
    private readonly KvmCpuidEntry2[] _supportedCpuid;
    private readonly bool _tscDeadlineTimer;
    private readonly KvmVcpu?[] _vcpus;
    private readonly object _gate = new();
    private bool _disposed;

    /// <exception cref="KvmUnavailableException">/dev/kvm cannot be used (the message says why).</exception>
    public KvmEngine(EngineContext context)
        : this(context, KvmSystem.DefaultDevicePath)
    {
    }

    /// <param name="context">Memory, buses and vCPU count from the machine.</param>
    /// <param name="devicePath">The KVM device (injectable for tests and unusual hosts).</param>
    public KvmEngine(EngineContext context, string devicePath)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.VcpuCount < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(context), context.VcpuCount, "a VM needs at least one vCPU");
        }

        _context = context;
        _system = KvmSystem.Open(devicePath);
        try
        {
            int maxVcpus = _system.CheckExtension(KvmCapability.MaxVcpus);
            if (maxVcpus > 0 && context.VcpuCount > maxVcpus)
            {
                throw new ArgumentOutOfRangeException(nameof(context), context.VcpuCount, $"the host KVM supports at most {maxVcpus} vCPUs per VM");
            }

            _vm = _system.CreateVm();
            // Both addresses before any vCPU exists (api.rst: KVM_SET_IDENTITY_MAP_ADDR "must be called before
            // any vCPU is created"), and the irqchip before vCPUs too, so each vCPU gets an in-kernel LAPIC.
            _vm.SetIdentityMapAddress(IdentityMapAddress);
            _vm.SetTssAddress(TssAddress);
            foreach (var region in context.Memory.Regions)
            {
                _vm.SetUserMemoryRegion((uint)region.Slot, region.GuestPhysicalAddress, region.Size, region.HostAddress);
            }

            _vm.CreateIrqChip();
            // KVM's default routing sends GSI 0 to IOAPIC pin 0; the firmware tables promise pin 2 (KvmPcGsiRouting).
            // KvmSystem.Open has checked KVM_CAP_IRQ_ROUTING.
            _vm.SetGsiRouting(KvmPcGsiRouting.Routes.AsSpan());
            _vm.CreatePit2(KvmPitConfig.FlagSpeakerDummy);
            _irqChip = new KvmIrqChip(_vm);
            _supportedCpuid = _system.GetSupportedCpuid();
            _tscDeadlineTimer = _system.CheckExtension(KvmCapability.TscDeadlineTimer) > 0;
            _vcpus = new KvmVcpu?[context.VcpuCount];
        }
        catch
        {
            _vm?.Dispose();
            _system.Dispose();
            throw;
        }
    }

    public string Name => "kvm";

    public IInterruptController Interrupts => _irqChip;

    public bool ProvidesInterruptControllers => true;

    /// <summary>The underlying VM descriptor (for ioctls the engine does not wrap yet).</summary>
    public KvmVm Vm => _vm;

    /// <exception cref="ArgumentOutOfRangeException">The index is outside [0, VcpuCount).</exception>
    /// <exception cref="InvalidOperationException">The vCPU was already created.</exception>
    public IVcpu CreateVcpu(int index)
    {
        if ((uint)index >= (uint)_vcpus.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"the VM has {_vcpus.Length} vCPU(s)");
        }

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_vcpus[index] is not null)
            {
                throw new InvalidOperationException($"vCPU {index} was already created");
            }

            var vcpu = new KvmVcpu(_vm, index, _context.Pio, _context.Mmio, _supportedCpuid, _context.CpuidOverrides, _tscDeadlineTimer);
            _vcpus[index] = vcpu;
            return vcpu;
        }
    }

    /// <summary>KVM_IRQFD: each signal of <paramref name="eventFd"/> pulses <paramref name="gsi"/> without a user-space round trip.</summary>
    public void RegisterIrqfd(int eventFd, int gsi)
    {
        ValidateGsi(gsi);
        _vm.AssignIrqfd(eventFd, (uint)gsi);
    }

    public void UnregisterIrqfd(int eventFd, int gsi)
    {
        ValidateGsi(gsi);
        _vm.AssignIrqfd(eventFd, (uint)gsi, deassign: true);
    }

    /// <summary>
    /// KVM_IOEVENTFD: a guest write of <paramref name="length"/> bytes to <paramref name="address"/> (a port when
    /// <paramref name="isPio"/>) signals <paramref name="eventFd"/> inside the kernel instead of exiting to the bus.
    /// </summary>
    public void RegisterIoEventfd(ulong address, uint length, int eventFd, bool isPio) =>
        _vm.AssignIoEventfd(address, length, eventFd, isPio);

    public void UnregisterIoEventfd(ulong address, uint length, int eventFd, bool isPio) =>
        _vm.AssignIoEventfd(address, length, eventFd, isPio, deassign: true);

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        foreach (var v in _vcpus)
        {
            v?.Dispose();
        }

        _vm.Dispose();
        _system.Dispose();
    }

    private static void ValidateGsi(int gsi)
    {
        if ((uint)gsi >= KvmIrqChip.GsiCount)
        {
            throw new ArgumentOutOfRangeException(nameof(gsi), gsi, $"the in-kernel irqchip routes GSIs 0..{KvmIrqChip.GsiCount - 1}");
        }
    }
}
