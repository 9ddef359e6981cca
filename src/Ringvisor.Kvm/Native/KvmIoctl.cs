// KVM ioctl request numbers, encoded as linux/ioctl.h's _IOC(dir, type, nr, size) with type KVMIO (0xAE):
// bits 0-7 nr, 8-15 type, 16-29 argument size, 30-31 direction (1 = write to the kernel, 2 = read from it).
// Numbers and argument types are those of include/uapi/linux/kvm.h.
namespace Ringvisor.Kvm.Native;

internal static class KvmIoctl
{
    private const uint Kvmio = 0xAE << 8;
    private const uint None = 0;
    private const uint Write = 1u << 30;
    private const uint Read = 2u << 30;
    private const uint ReadWrite = Write | Read;

    // System ioctls (on the /dev/kvm descriptor).
    public const uint GetApiVersion = None | Kvmio | 0x00;
    public const uint CreateVm = None | Kvmio | 0x01;
    public const uint CheckExtension = None | Kvmio | 0x03;
    public const uint GetVcpuMmapSize = None | Kvmio | 0x04;
    public const uint GetSupportedCpuid = ReadWrite | (KvmCpuid2.Size << 16) | Kvmio | 0x05;

    // VM ioctls.
    public const uint CreateVcpu = None | Kvmio | 0x41;
    public const uint SetUserMemoryRegion = Write | (KvmUserspaceMemoryRegion.Size << 16) | Kvmio | 0x46;
    public const uint SetTssAddr = None | Kvmio | 0x47;
    public const uint SetIdentityMapAddr = Write | (sizeof(ulong) << 16) | Kvmio | 0x48;
    public const uint CreateIrqchip = None | Kvmio | 0x60;
    public const uint IrqLine = Write | (KvmIrqLevel.Size << 16) | Kvmio | 0x61;
    public const uint GetIrqchip = ReadWrite | (KvmIrqchip.Size << 16) | Kvmio | 0x62;
    // The header declares KVM_SET_IRQCHIP with _IOR although the kernel reads the argument.
    public const uint SetIrqchip = Read | (KvmIrqchip.Size << 16) | Kvmio | 0x63;
    public const uint SetGsiRouting = Write | (KvmIrqRouting.Size << 16) | Kvmio | 0x6A;
    public const uint Irqfd = Write | (KvmIrqfd.Size << 16) | Kvmio | 0x76;
    public const uint CreatePit2 = Write | (KvmPitConfig.Size << 16) | Kvmio | 0x77;
    public const uint Ioeventfd = Write | (KvmIoeventfd.Size << 16) | Kvmio | 0x79;
    public const uint SignalMsi = Write | (KvmMsi.Size << 16) | Kvmio | 0xA5;

    // vCPU ioctls.
    public const uint Run = None | Kvmio | 0x80;
    public const uint GetRegs = Read | (KvmRegs.Size << 16) | Kvmio | 0x81;
    public const uint SetRegs = Write | (KvmRegs.Size << 16) | Kvmio | 0x82;
    public const uint GetSregs = Read | (KvmSregs.Size << 16) | Kvmio | 0x83;
    public const uint SetSregs = Write | (KvmSregs.Size << 16) | Kvmio | 0x84;
    public const uint GetMsrs = ReadWrite | (KvmMsrs.Size << 16) | Kvmio | 0x88;
    public const uint SetMsrs = Write | (KvmMsrs.Size << 16) | Kvmio | 0x89;
    public const uint GetFpu = Read | (KvmFpu.Size << 16) | Kvmio | 0x8C;
    public const uint SetFpu = Write | (KvmFpu.Size << 16) | Kvmio | 0x8D;
    public const uint GetLapic = Read | (KvmLapicState.Size << 16) | Kvmio | 0x8E;
    public const uint SetLapic = Write | (KvmLapicState.Size << 16) | Kvmio | 0x8F;
    public const uint SetCpuid2 = Write | (KvmCpuid2.Size << 16) | Kvmio | 0x90;
    public const uint GetMpState = Read | (KvmMpState.Size << 16) | Kvmio | 0x98;
    public const uint SetMpState = Write | (KvmMpState.Size << 16) | Kvmio | 0x99;
    public const uint GetXcrs = Read | (KvmXcrs.Size << 16) | Kvmio | 0xA6;
    public const uint SetXcrs = Write | (KvmXcrs.Size << 16) | Kvmio | 0xA7;
}
