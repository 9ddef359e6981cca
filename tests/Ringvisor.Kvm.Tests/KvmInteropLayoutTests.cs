// Interop structs and ioctl numbers against the kernel ABI. Expected sizes/offsets are those of
// include/uapi/linux/kvm.h and arch/x86/include/uapi/asm/kvm.h on x86-64 (sizeof/offsetof in C); ioctl numbers are
// what the header's _IO/_IOR/_IOW/_IOWR macros produce.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Ringvisor.Kvm.Native;

namespace Ringvisor.Kvm.Tests;

public class KvmInteropLayoutTests
{
    [Fact]
    public void StructSizes_MatchKernelAbi()
    {
        Assert.Equal(2352, Unsafe.SizeOf<KvmRun>());
        Assert.Equal(144, Unsafe.SizeOf<KvmRegs>());
        Assert.Equal(312, Unsafe.SizeOf<KvmSregs>());
        Assert.Equal(24, Unsafe.SizeOf<KvmSegment>());
        Assert.Equal(16, Unsafe.SizeOf<KvmDtable>());
        Assert.Equal(416, Unsafe.SizeOf<KvmFpu>());
        Assert.Equal(8, Unsafe.SizeOf<KvmMsrs>());
        Assert.Equal(16, Unsafe.SizeOf<KvmMsrEntry>());
        Assert.Equal(8, Unsafe.SizeOf<KvmCpuid2>());
        Assert.Equal(40, Unsafe.SizeOf<KvmCpuidEntry2>());
        Assert.Equal(32, Unsafe.SizeOf<KvmUserspaceMemoryRegion>());
        Assert.Equal(8, Unsafe.SizeOf<KvmIrqLevel>());
        Assert.Equal(32, Unsafe.SizeOf<KvmMsi>());
        Assert.Equal(64, Unsafe.SizeOf<KvmPitConfig>());
        Assert.Equal(4, Unsafe.SizeOf<KvmMpState>());
        Assert.Equal(32, Unsafe.SizeOf<KvmIrqfd>());
        Assert.Equal(64, Unsafe.SizeOf<KvmIoeventfd>());
        Assert.Equal(1024, Unsafe.SizeOf<KvmLapicState>());
        Assert.Equal(48, Unsafe.SizeOf<KvmIrqRoutingEntry>());
        Assert.Equal(8, Unsafe.SizeOf<KvmIrqRouting>());
        Assert.Equal(520, Unsafe.SizeOf<KvmIrqchip>());
        Assert.Equal(152, Unsafe.SizeOf<SigAction>());
        Assert.Equal(8, Unsafe.SizeOf<PollFd>());
        Assert.Equal(392, Unsafe.SizeOf<KvmXcrs>()); // 8 + KVM_MAX_XCRS (16) * 16 + 16 * 8
    }

    [Fact]
    public void SizeConstants_AgreeWithLayouts()
    {
        Assert.Equal(KvmRun.Size, Unsafe.SizeOf<KvmRun>());
        Assert.Equal(KvmRegs.Size, Unsafe.SizeOf<KvmRegs>());
        Assert.Equal(KvmSregs.Size, Unsafe.SizeOf<KvmSregs>());
        Assert.Equal(KvmFpu.Size, Unsafe.SizeOf<KvmFpu>());
        Assert.Equal(KvmCpuidEntry2.Size, Unsafe.SizeOf<KvmCpuidEntry2>());
        Assert.Equal(KvmMsrEntry.Size, Unsafe.SizeOf<KvmMsrEntry>());
        Assert.Equal(SigAction.Size, Unsafe.SizeOf<SigAction>());
        Assert.Equal(KvmIrqRoutingEntry.Size, Unsafe.SizeOf<KvmIrqRoutingEntry>());
        Assert.Equal(KvmIrqRouting.Size, Unsafe.SizeOf<KvmIrqRouting>());
        Assert.Equal(KvmIrqchip.Size, Unsafe.SizeOf<KvmIrqchip>());
    }

    [Theory]
    [InlineData("ExitReason", 8)]
    [InlineData("ImmediateExit", 1)]
    [InlineData("IfFlag", 13)]
    [InlineData("Cr8", 16)]
    [InlineData("ApicBase", 24)]
    [InlineData("Io", 32)]
    [InlineData("Mmio", 32)]
    [InlineData("FailEntry", 32)]
    [InlineData("Internal", 32)]
    [InlineData("SystemEvent", 32)]
    [InlineData("KvmValidRegs", 288)]
    public void KvmRun_FieldOffsets_MatchKernelAbi(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<KvmRun>(field));

    [Theory]
    [InlineData("Direction", 0)]
    [InlineData("Size", 1)]
    [InlineData("Port", 2)]
    [InlineData("Count", 4)]
    [InlineData("DataOffset", 8)]
    public void KvmRunIo_FieldOffsets_MatchKernelAbi(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<KvmRunIo>(field));

    [Theory]
    [InlineData("PhysAddr", 0)]
    [InlineData("Data", 8)]
    [InlineData("Len", 16)]
    [InlineData("IsWrite", 20)]
    public void KvmRunMmio_FieldOffsets_MatchKernelAbi(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<KvmRunMmio>(field));

    [Fact]
    public void OtherFieldOffsets_MatchKernelAbi()
    {
        Assert.Equal(280, (int)Marshal.OffsetOf<KvmSregs>("InterruptBitmap"));
        Assert.Equal(272, (int)Marshal.OffsetOf<KvmSregs>("ApicBase"));
        Assert.Equal(408, (int)Marshal.OffsetOf<KvmFpu>("Mxcsr"));
        Assert.Equal(152, (int)Marshal.OffsetOf<KvmFpu>("Xmm"));
        Assert.Equal(8, (int)Marshal.OffsetOf<KvmRunInternal>("Data"));
        Assert.Equal(20, (int)Marshal.OffsetOf<KvmIoeventfd>("Fd"));
        Assert.Equal(136, (int)Marshal.OffsetOf<SigAction>("Flags"));
        Assert.Equal(8, (int)Marshal.OffsetOf<KvmIrqchip>("Chip"));
        Assert.Equal(8, (int)Marshal.OffsetOf<KvmXcrs>("Xcrs"));
    }

    [Theory]
    [InlineData("Gsi", 0)]
    [InlineData("Type", 4)]
    [InlineData("Flags", 8)]
    [InlineData("Irqchip", 16)]
    [InlineData("Pin", 20)]
    public void KvmIrqRoutingEntry_FieldOffsets_MatchKernelAbi(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<KvmIrqRoutingEntry>(field));

    [Fact]
    public void IrqchipConstants_MatchKernelHeader()
    {
        // KVM_IRQCHIP_PIC_MASTER/PIC_SLAVE/IOAPIC, KVM_IRQ_ROUTING_IRQCHIP, KVM_CAP_IRQ_ROUTING.
        Assert.Equal(0, (int)KvmIrqchipId.PicMaster);
        Assert.Equal(1, (int)KvmIrqchipId.PicSlave);
        Assert.Equal(2, (int)KvmIrqchipId.IoApic);
        Assert.Equal(1u, KvmIrqRoutingEntry.TypeIrqchip);
        Assert.Equal(25, (int)KvmCapability.IrqRouting);
    }

    [Theory]
    [InlineData(KvmIoctl.GetApiVersion, 0xAE00u)]
    [InlineData(KvmIoctl.CreateVm, 0xAE01u)]
    [InlineData(KvmIoctl.CheckExtension, 0xAE03u)]
    [InlineData(KvmIoctl.GetVcpuMmapSize, 0xAE04u)]
    [InlineData(KvmIoctl.GetSupportedCpuid, 0xC008AE05u)]
    [InlineData(KvmIoctl.CreateVcpu, 0xAE41u)]
    [InlineData(KvmIoctl.SetUserMemoryRegion, 0x4020AE46u)]
    [InlineData(KvmIoctl.SetTssAddr, 0xAE47u)]
    [InlineData(KvmIoctl.SetIdentityMapAddr, 0x4008AE48u)]
    [InlineData(KvmIoctl.CreateIrqchip, 0xAE60u)]
    [InlineData(KvmIoctl.IrqLine, 0x4008AE61u)]
    [InlineData(KvmIoctl.GetIrqchip, 0xC208AE62u)]
    [InlineData(KvmIoctl.SetIrqchip, 0x8208AE63u)]
    [InlineData(KvmIoctl.SetGsiRouting, 0x4008AE6Au)]
    [InlineData(KvmIoctl.Irqfd, 0x4020AE76u)]
    [InlineData(KvmIoctl.CreatePit2, 0x4040AE77u)]
    [InlineData(KvmIoctl.Ioeventfd, 0x4040AE79u)]
    [InlineData(KvmIoctl.SignalMsi, 0x4020AEA5u)]
    [InlineData(KvmIoctl.Run, 0xAE80u)]
    [InlineData(KvmIoctl.GetRegs, 0x8090AE81u)]
    [InlineData(KvmIoctl.SetRegs, 0x4090AE82u)]
    [InlineData(KvmIoctl.GetSregs, 0x8138AE83u)]
    [InlineData(KvmIoctl.SetSregs, 0x4138AE84u)]
    [InlineData(KvmIoctl.GetMsrs, 0xC008AE88u)]
    [InlineData(KvmIoctl.SetMsrs, 0x4008AE89u)]
    [InlineData(KvmIoctl.GetFpu, 0x81A0AE8Cu)]
    [InlineData(KvmIoctl.SetFpu, 0x41A0AE8Du)]
    [InlineData(KvmIoctl.GetLapic, 0x8400AE8Eu)]
    [InlineData(KvmIoctl.SetLapic, 0x4400AE8Fu)]
    [InlineData(KvmIoctl.SetCpuid2, 0x4008AE90u)]
    [InlineData(KvmIoctl.GetMpState, 0x8004AE98u)]
    [InlineData(KvmIoctl.SetMpState, 0x4004AE99u)]
    public void IoctlNumbers_MatchKernelHeaderEncoding(uint actual, uint expected) => Assert.Equal(expected, actual);
}
