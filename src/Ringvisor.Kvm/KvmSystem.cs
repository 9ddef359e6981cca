// The /dev/kvm descriptor: API version and capability checks, VM creation, host-supported CPUID.
// Documentation/virt/kvm/api.rst §4 (KVM_GET_API_VERSION, KVM_CHECK_EXTENSION, KVM_CREATE_VM,
// KVM_GET_VCPU_MMAP_SIZE, KVM_GET_SUPPORTED_CPUID).
using System.Runtime.InteropServices;
using Ringvisor.Kvm.Native;

namespace Ringvisor.Kvm;

public sealed class KvmSystem : IDisposable
{
    public const string DefaultDevicePath = "/dev/kvm";

    /// <summary>The only stable KVM API version (api.rst §4.1: "applications should refuse to run if ... returns a value other than 12").</summary>
    public const int ExpectedApiVersion = 12;

    /// <summary>Every capability the engine relies on, with what it is needed for.</summary>
    public static readonly IReadOnlyList<(KvmCapability Capability, string UsedFor)> RequiredCapabilities =
    [
        (KvmCapability.UserMemory, "guest RAM slots (KVM_SET_USER_MEMORY_REGION)"),
        (KvmCapability.SetTssAddr, "the real-mode TSS area (KVM_SET_TSS_ADDR)"),
        (KvmCapability.SetIdentityMapAddr, "the identity-map page (KVM_SET_IDENTITY_MAP_ADDR)"),
        (KvmCapability.Irqchip, "the in-kernel PIC/IOAPIC/LAPIC (KVM_CREATE_IRQCHIP)"),
        (KvmCapability.IrqRouting, "routing ISA IRQ 0 to IOAPIC pin 2 as the MP/ACPI tables say (KVM_SET_GSI_ROUTING)"),
        (KvmCapability.Pit2, "the in-kernel PIT (KVM_CREATE_PIT2)"),
        (KvmCapability.ImmediateExit, "kicking vCPUs out of KVM_RUN (kvm_run.immediate_exit)"),
        (KvmCapability.ExtCpuid, "CPUID set-up (KVM_GET_SUPPORTED_CPUID / KVM_SET_CPUID2)"),
        (KvmCapability.MpState, "halt detection and AP start-up state (KVM_GET_MP_STATE)"),
        (KvmCapability.SignalMsi, "message-signalled interrupts (KVM_SIGNAL_MSI)"),
        (KvmCapability.Irqfd, "eventfd-driven interrupts (KVM_IRQFD)"),
        (KvmCapability.Ioeventfd, "eventfd-signalled doorbells (KVM_IOEVENTFD)"),
    ];

    private readonly FileDescriptorHandle _fd;

    private KvmSystem(string path, FileDescriptorHandle fd, int vcpuMmapSize)
    {
        DevicePath = path;
        _fd = fd;
        VcpuMmapSize = vcpuMmapSize;
    }

    public string DevicePath { get; }

    /// <summary>Bytes to mmap from each vCPU descriptor (kvm_run plus the PIO data page and any rings).</summary>
    public int VcpuMmapSize { get; }

    /// <summary>
    /// Opens the KVM device and checks the API version and every capability in <see cref="RequiredCapabilities"/>.
    /// </summary>
    /// <exception cref="KvmUnavailableException">KVM cannot be used; the message says why.</exception>
    public static KvmSystem Open(string devicePath = DefaultDevicePath)
    {
        ArgumentNullException.ThrowIfNull(devicePath);
        int raw = LibC.open(devicePath, LibC.ORdwr | LibC.OCloexec);
        if (raw < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new KvmUnavailableException(errno switch
            {
                LibC.ENoEnt => $"KVM is unavailable: {devicePath} does not exist (load the kvm module, enable virtualization in the firmware, or use --engine bt)",
                LibC.EAcces or LibC.EPerm => $"KVM is unavailable: permission denied opening {devicePath} read-write (add the user to the 'kvm' group or run as root)",
                _ => $"KVM is unavailable: cannot open {devicePath}: {LibC.Describe(errno)}",
            })
            { Errno = errno };
        }

        var fd = new FileDescriptorHandle(raw);
        try
        {
            int version = LibC.ioctl(raw, KvmIoctl.GetApiVersion, 0);
            if (version < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw new KvmUnavailableException($"KVM is unavailable: {devicePath} is not a KVM device (KVM_GET_API_VERSION failed: {LibC.Describe(errno)})")
                {
                    Errno = errno,
                };
            }

            if (version != ExpectedApiVersion)
            {
                throw new KvmUnavailableException($"KVM is unavailable: {devicePath} speaks KVM API version {version}, Ringvisor needs version {ExpectedApiVersion}");
            }

            foreach (var (cap, usedFor) in RequiredCapabilities)
            {
                if (LibC.ioctl(raw, KvmIoctl.CheckExtension, (nint)cap) <= 0)
                {
                    throw new KvmUnavailableException($"KVM is unavailable: the host KVM lacks KVM_CAP_{CapabilityName(cap)} ({(int)cap}), needed for {usedFor}");
                }
            }

            int mmapSize = LibC.ioctl(raw, KvmIoctl.GetVcpuMmapSize, 0);
            if (mmapSize < KvmRun.Size)
            {
                throw new KvmUnavailableException($"KVM is unavailable: KVM_GET_VCPU_MMAP_SIZE returned {mmapSize}, smaller than struct kvm_run ({KvmRun.Size} bytes)");
            }

            return new KvmSystem(devicePath, fd, mmapSize);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>KVM_CHECK_EXTENSION: 0 when absent, otherwise 1 or a capability-specific value.</summary>
    public int CheckExtension(KvmCapability capability)
    {
        int r = LibC.ioctl(_fd.Fd, KvmIoctl.CheckExtension, (nint)capability);
        return r < 0 ? 0 : r;
    }

    /// <summary>Creates an empty VM (no memory, no vCPUs, no irqchip).</summary>
    public KvmVm CreateVm()
    {
        int raw = LibC.ioctl(_fd.Fd, KvmIoctl.CreateVm, 0);
        if (raw < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new KvmException($"KVM_CREATE_VM failed: {LibC.Describe(errno)}") { Errno = errno };
        }

        return new KvmVm(this, new FileDescriptorHandle(raw));
    }

    /// <summary>KVM_GET_SUPPORTED_CPUID: every leaf the host KVM can expose, with the feature bits it supports.</summary>
    internal unsafe KvmCpuidEntry2[] GetSupportedCpuid()
    {
        // The kernel answers E2BIG until the buffer is large enough; grow geometrically (api.rst §4.46).
        for (int capacity = 64; capacity <= 4096; capacity *= 2)
        {
            int bytes = KvmCpuid2.Size + (capacity * KvmCpuidEntry2.Size);
            byte[] buffer = new byte[bytes];
            fixed (byte* p = buffer)
            {
                // SAFETY: the buffer holds the header plus `capacity` entries, as nent tells the kernel.
                ((KvmCpuid2*)p)->Nent = (uint)capacity;
                int r = LibC.ioctl(_fd.Fd, KvmIoctl.GetSupportedCpuid, (nint)p);
                if (r < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == LibC.E2Big)
                    {
                        continue;
                    }

                    throw new KvmException($"KVM_GET_SUPPORTED_CPUID failed: {LibC.Describe(errno)}") { Errno = errno };
                }

                // SAFETY: the kernel wrote nent <= capacity entries after the header.
                int n = (int)Math.Min(((KvmCpuid2*)p)->Nent, (uint)capacity);
                return new ReadOnlySpan<KvmCpuidEntry2>(p + KvmCpuid2.Size, n).ToArray();
            }
        }

        throw new KvmException("KVM_GET_SUPPORTED_CPUID: the host reports more than 4096 CPUID entries");
    }

    internal int Fd => _fd.Fd;

    public void Dispose() => _fd.Dispose();

    private static string CapabilityName(KvmCapability cap) => cap switch
    {
        KvmCapability.UserMemory => "USER_MEMORY",
        KvmCapability.SetTssAddr => "SET_TSS_ADDR",
        KvmCapability.SetIdentityMapAddr => "SET_IDENTITY_MAP_ADDR",
        KvmCapability.Irqchip => "IRQCHIP",
        KvmCapability.IrqRouting => "IRQ_ROUTING",
        KvmCapability.Pit2 => "PIT2",
        KvmCapability.ImmediateExit => "IMMEDIATE_EXIT",
        KvmCapability.ExtCpuid => "EXT_CPUID",
        KvmCapability.MpState => "MP_STATE",
        KvmCapability.SignalMsi => "SIGNAL_MSI",
        KvmCapability.Irqfd => "IRQFD",
        KvmCapability.Ioeventfd => "IOEVENTFD",
        _ => cap.ToString().ToUpperInvariant(),
    };
}
