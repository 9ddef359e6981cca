// A VM descriptor: memory slots, the in-kernel irqchip and PIT, interrupt injection, irqfd/ioeventfd, vCPU creation.
// Documentation/virt/kvm/api.rst §4 (KVM_SET_USER_MEMORY_REGION, KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR,
// KVM_CREATE_IRQCHIP, KVM_SET_GSI_ROUTING, KVM_GET_IRQCHIP, KVM_CREATE_PIT2, KVM_IRQ_LINE, KVM_SIGNAL_MSI, KVM_IRQFD,
// KVM_IOEVENTFD, KVM_CREATE_VCPU).
using System.Runtime.InteropServices;
using Ringvisor.Kvm.Native;

namespace Ringvisor.Kvm;

// SAFETY (whole class): every pointer handed to ioctl is the address of a local of exactly the struct type the
// request number encodes (sizes asserted in KvmInteropLayoutTests), alive for the duration of the call.
public sealed unsafe class KvmVm : IDisposable
{
    private readonly FileDescriptorHandle _fd;

    internal KvmVm(KvmSystem system, FileDescriptorHandle fd)
    {
        System = system;
        _fd = fd;
    }

    public KvmSystem System { get; }

    internal int Fd => _fd.Fd;

    /// <summary>Three pages of guest-physical space KVM uses for the real-mode TSS on VMX (must not be RAM).</summary>
    public void SetTssAddress(uint address) => Check(LibC.ioctl(_fd.Fd, KvmIoctl.SetTssAddr, (nint)address), "KVM_SET_TSS_ADDR");

    /// <summary>One page KVM uses for the identity page table of unrestricted-guest-less VMX; set before vCPUs exist.</summary>
    public void SetIdentityMapAddress(ulong address)
    {
        ulong a = address;
        Check(LibC.ioctl(_fd.Fd, KvmIoctl.SetIdentityMapAddr, (nint)(&a)), "KVM_SET_IDENTITY_MAP_ADDR");
    }

    /// <summary>Maps <paramref name="size"/> bytes of host memory at <paramref name="hostAddress"/> into slot <paramref name="slot"/>.</summary>
    public void SetUserMemoryRegion(uint slot, ulong guestPhysicalAddress, ulong size, nint hostAddress, uint flags = 0)
    {
        var region = new KvmUserspaceMemoryRegion
        {
            Slot = slot,
            Flags = flags,
            GuestPhysAddr = guestPhysicalAddress,
            MemorySize = size,
            UserspaceAddr = (ulong)hostAddress,
        };
        Check(LibC.ioctl(_fd.Fd, KvmIoctl.SetUserMemoryRegion, (nint)(&region)), $"KVM_SET_USER_MEMORY_REGION (slot {slot}, {guestPhysicalAddress:X}+{size:X})");
    }

    /// <summary>Creates the in-kernel PIC pair, IOAPIC and per-vCPU LAPICs with the default GSI routing.</summary>
    public void CreateIrqChip() => Check(LibC.ioctl(_fd.Fd, KvmIoctl.CreateIrqchip, 0), "KVM_CREATE_IRQCHIP");

    /// <summary>
    /// KVM_SET_GSI_ROUTING: replaces the whole GSI routing table (after <see cref="CreateIrqChip"/>). A GSI with no
    /// route is accepted by KVM_IRQ_LINE and does nothing.
    /// </summary>
    /// <exception cref="ArgumentException">A route names a pin the controller does not have.</exception>
    public void SetGsiRouting(ReadOnlySpan<KvmGsiRoute> routes)
    {
        int bytes = KvmIrqRouting.Size + (routes.Length * KvmIrqRoutingEntry.Size);
        byte[] buffer = new byte[bytes];
        fixed (byte* p = buffer)
        {
            // SAFETY: the buffer holds the header plus routes.Length entries, as nr tells the kernel.
            *(KvmIrqRouting*)p = new KvmIrqRouting { Nr = (uint)routes.Length };
            var entries = new Span<KvmIrqRoutingEntry>(p + KvmIrqRouting.Size, routes.Length);
            for (int i = 0; i < routes.Length; i++)
            {
                var r = routes[i];
                uint pins = r.Chip switch
                {
                    KvmIrqchipId.PicMaster or KvmIrqchipId.PicSlave => KvmPcGsiRouting.PicInputs,
                    KvmIrqchipId.IoApic => KvmPcGsiRouting.IoApicPins,
                    _ => throw new ArgumentException($"route {i}: unknown irqchip {r.Chip}", nameof(routes)),
                };
                if (r.Pin >= pins)
                {
                    throw new ArgumentException($"route {i}: {r.Chip} has pins 0..{pins - 1}, not {r.Pin}", nameof(routes));
                }

                entries[i] = new KvmIrqRoutingEntry
                {
                    Gsi = r.Gsi,
                    Type = KvmIrqRoutingEntry.TypeIrqchip,
                    Irqchip = (uint)r.Chip,
                    Pin = r.Pin,
                };
            }

            Check(LibC.ioctl(_fd.Fd, KvmIoctl.SetGsiRouting, (nint)p), $"KVM_SET_GSI_ROUTING ({routes.Length} routes)");
        }
    }

    /// <summary>KVM_GET_IRQCHIP: the state of one in-kernel controller (kvm_pic_state or kvm_ioapic_state).</summary>
    internal KvmIrqchip GetIrqchip(KvmIrqchipId chip)
    {
        var state = new KvmIrqchip { ChipId = (uint)chip };
        Check(LibC.ioctl(_fd.Fd, KvmIoctl.GetIrqchip, (nint)(&state)), $"KVM_GET_IRQCHIP ({chip})");
        return state;
    }

    /// <summary>KVM_SET_IRQCHIP: replaces the state of one in-kernel controller.</summary>
    internal void SetIrqchip(in KvmIrqchip state)
    {
        var copy = state;
        Check(LibC.ioctl(_fd.Fd, KvmIoctl.SetIrqchip, (nint)(&copy)), $"KVM_SET_IRQCHIP ({(KvmIrqchipId)state.ChipId})");
    }

    /// <summary>
    /// Sets the edge/level control registers of the in-kernel 8259 pair (what firmware writes to ports 0x4D0/0x4D1;
    /// the guest's own accesses to those ports are handled inside KVM). Bit n of <paramref name="levelIrqs"/> makes
    /// ISA IRQ n level-triggered; KVM keeps its mask of the bits a PIIX allows (master 0xF8, slave 0xDE).
    /// </summary>
    public void SetPicLevelTriggered(ushort levelIrqs)
    {
        foreach (var (chip, bits) in new[] { (KvmIrqchipId.PicMaster, (byte)levelIrqs), (KvmIrqchipId.PicSlave, (byte)(levelIrqs >> 8)) })
        {
            var state = GetIrqchip(chip);
            // SAFETY: elcr and elcr_mask lie inside the 512-byte union (kvm_pic_state is 16 bytes).
            byte mask = state.Chip[KvmIrqchip.PicElcrOffset + 1];
            state.Chip[KvmIrqchip.PicElcrOffset] = (byte)(bits & mask);
            SetIrqchip(state);
        }
    }

    /// <summary>The in-kernel IOAPIC's IRR: bit n set while pin n is asserted and not yet delivered.</summary>
    internal uint GetIoApicIrr()
    {
        var state = GetIrqchip(KvmIrqchipId.IoApic);
        // SAFETY: the offset lies inside the 512-byte union (kvm_ioapic_state is 216 bytes).
        return *(uint*)(state.Chip + KvmIrqchip.IoApicIrrOffset);
    }

    /// <summary>Creates the in-kernel i8254 PIT (after the irqchip).</summary>
    public void CreatePit2(uint flags)
    {
        var config = new KvmPitConfig { Flags = flags };
        Check(LibC.ioctl(_fd.Fd, KvmIoctl.CreatePit2, (nint)(&config)), "KVM_CREATE_PIT2");
    }

    /// <summary>KVM_IRQ_LINE: drives GSI <paramref name="gsi"/> of the in-kernel irqchip.</summary>
    /// <returns>0 on success, otherwise the errno.</returns>
    public int SetIrqLine(uint gsi, bool level)
    {
        var l = new KvmIrqLevel { Irq = gsi, Level = level ? 1u : 0u };
        return LibC.ioctl(_fd.Fd, KvmIoctl.IrqLine, (nint)(&l)) < 0 ? Marshal.GetLastPInvokeError() : 0;
    }

    /// <summary>KVM_SIGNAL_MSI.</summary>
    /// <returns>&gt; 0 delivered, 0 blocked by the guest (e.g. masked), &lt; 0 the negated errno.</returns>
    public int SignalMsi(ulong address, uint data)
    {
        var msi = new KvmMsi { AddressLo = (uint)address, AddressHi = (uint)(address >> 32), Data = data };
        int r = LibC.ioctl(_fd.Fd, KvmIoctl.SignalMsi, (nint)(&msi));
        return r < 0 ? -Marshal.GetLastPInvokeError() : r;
    }

    /// <summary>KVM_IRQFD: a write to <paramref name="eventFd"/> pulses <paramref name="gsi"/> inside the kernel.</summary>
    public void AssignIrqfd(int eventFd, uint gsi, bool deassign = false)
    {
        var irqfd = new KvmIrqfd { Fd = (uint)eventFd, Gsi = gsi, Flags = deassign ? KvmIrqfd.FlagDeassign : 0 };
        Check(LibC.ioctl(_fd.Fd, KvmIoctl.Irqfd, (nint)(&irqfd)), $"KVM_IRQFD (fd {eventFd}, gsi {gsi}{(deassign ? ", deassign" : "")})");
    }

    /// <summary>
    /// KVM_IOEVENTFD: a guest write of <paramref name="length"/> bytes (0 = any length, MMIO only) to
    /// <paramref name="address"/> signals <paramref name="eventFd"/> without an exit to user space.
    /// </summary>
    public void AssignIoEventfd(ulong address, uint length, int eventFd, bool isPio, ulong? dataMatch = null, bool deassign = false)
    {
        uint flags = (isPio ? KvmIoeventfd.FlagPio : 0) | (dataMatch.HasValue ? KvmIoeventfd.FlagDatamatch : 0) |
                     (deassign ? KvmIoeventfd.FlagDeassign : 0);
        var ioeventfd = new KvmIoeventfd
        {
            Datamatch = dataMatch ?? 0,
            Addr = address,
            Len = length,
            Fd = eventFd,
            Flags = flags,
        };
        Check(LibC.ioctl(_fd.Fd, KvmIoctl.Ioeventfd, (nint)(&ioeventfd)),
            $"KVM_IOEVENTFD ({(isPio ? "port" : "address")} {address:X}, length {length}, fd {eventFd}{(deassign ? ", deassign" : "")})");
    }

    /// <summary>KVM_CREATE_VCPU with vCPU id (= initial APIC ID) <paramref name="id"/>.</summary>
    internal FileDescriptorHandle CreateVcpuFd(int id)
    {
        int raw = LibC.ioctl(_fd.Fd, KvmIoctl.CreateVcpu, id);
        Check(raw, $"KVM_CREATE_VCPU ({id})");
        return new FileDescriptorHandle(raw);
    }

    public void Dispose() => _fd.Dispose();

    internal static void Check(int result, string what)
    {
        if (result < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new KvmException($"{what} failed: {LibC.Describe(errno)}") { Errno = errno };
        }
    }
}
