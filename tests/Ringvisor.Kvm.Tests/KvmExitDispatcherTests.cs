// Exit decoding on a kvm_run image built in a byte array, so the paths no test guest can provoke (impossible sizes,
// entry failures, internal errors, system events) are covered without /dev/kvm.
using System.Runtime.InteropServices;
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Kvm.Native;
using Ringvisor.Kvm.Tests.Support;

namespace Ringvisor.Kvm.Tests;

public class KvmExitDispatcherTests
{
    private const int PageSize = 3 * 4096;
    private const int DataOffset = 4096;

    private static byte[] IoPage(byte direction, byte size, ushort port, uint count, ulong dataOffset = DataOffset)
    {
        byte[] page = new byte[PageSize];
        ref KvmRun run = ref MemoryMarshal.AsRef<KvmRun>(page.AsSpan());
        run.ExitReason = (uint)KvmExitReason.Io;
        run.Io = new KvmRunIo { Direction = direction, Size = size, Port = port, Count = count, DataOffset = dataOffset };
        return page;
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(4, 1)]
    [InlineData(1, 5)]
    [InlineData(2, 3)]
    [InlineData(4, 2)]
    public void DispatchIo_Out_WritesEachItemToTheBus(byte size, uint count)
    {
        var bus = new IoBus("pio", 0x1_0000);
        var dev = new PortCaptureDevice();
        bus.Register(0x3F8, 8, dev, "capture");
        byte[] page = IoPage(KvmRunIo.DirectionOut, size, 0x3F9, count);
        for (int i = 0; i < size * count; i++)
        {
            page[DataOffset + i] = (byte)(0x10 + i);
        }

        Assert.True(KvmExitDispatcher.DispatchIo(page, bus));

        var writes = dev.Writes;
        Assert.Equal((int)count, writes.Count);
        for (int n = 0; n < count; n++)
        {
            ulong expected = 0;
            for (int b = size - 1; b >= 0; b--)
            {
                expected = (expected << 8) | (byte)(0x10 + (n * size) + b);
            }

            Assert.Equal((1UL, expected, (int)size), writes[n]);
        }
    }

    [Theory]
    [InlineData(1, 4)]
    [InlineData(2, 2)]
    [InlineData(4, 1)]
    public void DispatchIo_In_FillsTheDataArea(byte size, uint count)
    {
        var bus = new IoBus("pio", 0x1_0000);
        bus.Register(0x60, 4, new PortCaptureDevice(firstReadByte: 0x40), "capture");
        byte[] page = IoPage(KvmRunIo.DirectionIn, size, 0x60, count);

        Assert.True(KvmExitDispatcher.DispatchIo(page, bus));

        for (int i = 0; i < size * count; i++)
        {
            Assert.Equal((byte)(0x40 + i), page[DataOffset + i]);
        }
    }

    [Fact]
    public void DispatchIo_InFromUnclaimedPort_ReadsAllOnes()
    {
        byte[] page = IoPage(KvmRunIo.DirectionIn, 4, 0x1234, 1);

        Assert.True(KvmExitDispatcher.DispatchIo(page, new IoBus("pio", 0x1_0000)));

        Assert.Equal(0xFFFF_FFFFu, BitConverter.ToUInt32(page, DataOffset));
    }

    [Theory]
    [InlineData(3, 1, DataOffset)]
    [InlineData(8, 1, DataOffset)]
    [InlineData(1, 0, DataOffset)]
    [InlineData(4, 1, PageSize - 2)]
    [InlineData(1, 1, PageSize + 10)]
    [InlineData(4, 0x4000_0000, DataOffset)]
    public void DispatchIo_ImpossibleAccess_ReturnsFalseWithoutTouchingTheBus(byte size, uint count, ulong offset)
    {
        var bus = new IoBus("pio", 0x1_0000);
        var dev = new PortCaptureDevice();
        bus.Register(0, 0x1_0000, dev, "everything");

        Assert.False(KvmExitDispatcher.DispatchIo(IoPage(KvmRunIo.DirectionOut, size, 0x10, count, offset), bus));

        Assert.Empty(dev.Writes);
    }

    [Fact]
    public void DispatchMmio_WriteAndRead_ReachTheDeviceAtItsOffset()
    {
        var bus = new IoBus("mmio", 1UL << 52);
        var dev = new MmioRecorderDevice();
        bus.Register(0xD000_0000, 0x1000, dev, "recorder");
        byte[] page = new byte[PageSize];
        ref KvmRun run = ref MemoryMarshal.AsRef<KvmRun>(page.AsSpan());
        run.ExitReason = (uint)KvmExitReason.Mmio;
        run.Mmio.PhysAddr = 0xD000_0010;
        run.Mmio.Len = 4;
        run.Mmio.IsWrite = 1;
        page[40] = 0x78;
        page[41] = 0x56;
        page[42] = 0x34;
        page[43] = 0x12;

        Assert.True(KvmExitDispatcher.DispatchMmio(page, bus));
        run.Mmio.IsWrite = 0;
        run.Mmio.Len = 2;
        Assert.True(KvmExitDispatcher.DispatchMmio(page, bus));

        var w = Assert.Single(dev.Writes);
        Assert.Equal(0x10UL, w.Offset);
        Assert.Equal(new byte[] { 0x78, 0x56, 0x34, 0x12 }, w.Data);
        Assert.Equal((0x10UL, 2), Assert.Single(dev.Reads));
        Assert.Equal(MmioRecorderDevice.ReadByteAt(0x10, 0), page[40]);
        Assert.Equal(MmioRecorderDevice.ReadByteAt(0x10, 1), page[41]);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(9u)]
    public void DispatchMmio_ImpossibleLength_ReturnsFalse(uint len)
    {
        byte[] page = new byte[PageSize];
        ref KvmRun run = ref MemoryMarshal.AsRef<KvmRun>(page.AsSpan());
        run.Mmio.Len = len;

        Assert.False(KvmExitDispatcher.DispatchMmio(page, new IoBus("mmio", 1UL << 52)));
    }

    [Theory]
    [InlineData(KvmExitReason.Hlt, VcpuExitReason.Halted)]
    [InlineData(KvmExitReason.Shutdown, VcpuExitReason.Shutdown)]
    public void Describe_SimpleExits_MapToCoreReasons(KvmExitReason reason, VcpuExitReason expected)
    {
        byte[] page = new byte[PageSize];
        MemoryMarshal.AsRef<KvmRun>(page.AsSpan()).ExitReason = (uint)reason;

        Assert.Equal(expected, KvmExitDispatcher.Describe(page).Reason);
    }

    [Theory]
    [InlineData(KvmSystemEventType.Shutdown, VcpuExitReason.PowerOff)]
    [InlineData(KvmSystemEventType.Reset, VcpuExitReason.Reset)]
    [InlineData(KvmSystemEventType.Crash, VcpuExitReason.Error)]
    public void Describe_SystemEvent_MapsType(KvmSystemEventType type, VcpuExitReason expected)
    {
        byte[] page = new byte[PageSize];
        ref KvmRun run = ref MemoryMarshal.AsRef<KvmRun>(page.AsSpan());
        run.ExitReason = (uint)KvmExitReason.SystemEvent;
        run.SystemEvent.Type = (uint)type;

        Assert.Equal(expected, KvmExitDispatcher.Describe(page).Reason);
    }

    [Fact]
    public void Describe_FailEntry_IsErrorNamingTheHardwareReason()
    {
        byte[] page = new byte[PageSize];
        ref KvmRun run = ref MemoryMarshal.AsRef<KvmRun>(page.AsSpan());
        run.ExitReason = (uint)KvmExitReason.FailEntry;
        run.FailEntry.HardwareEntryFailureReason = 0x80000021;
        run.FailEntry.Cpu = 1;

        var exit = KvmExitDispatcher.Describe(page);

        Assert.Equal(VcpuExitReason.Error, exit.Reason);
        Assert.Contains("KVM_EXIT_FAIL_ENTRY", exit.Detail, StringComparison.Ordinal);
        Assert.Contains("0x80000021", exit.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public unsafe void Describe_InternalError_IsErrorNamingSuberrorAndData()
    {
        byte[] page = new byte[PageSize];
        ref KvmRun run = ref MemoryMarshal.AsRef<KvmRun>(page.AsSpan());
        run.ExitReason = (uint)KvmExitReason.InternalError;
        run.Internal.Suberror = (uint)KvmInternalError.Emulation;
        run.Internal.Ndata = 2;
        run.Internal.Data[0] = 0xABC;
        run.Internal.Data[1] = 0xDEF;

        var exit = KvmExitDispatcher.Describe(page);

        Assert.Equal(VcpuExitReason.Error, exit.Reason);
        Assert.Contains("KVM_EXIT_INTERNAL_ERROR: suberror 1 (emulation failure)", exit.Detail, StringComparison.Ordinal);
        Assert.Contains("0xABC 0xDEF", exit.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public unsafe void Describe_EmulationFailureWithInstructionBytes_PrintsTheInstructionInHex()
    {
        // Flag bit 0: instruction bytes present; then a length byte and up to 15 bytes (api.rst, emulation_failure).
        // The instruction is LOCK CMPXCHG16B [RBP+0x20] (F0 48 0F C7 4D 20), followed by the next instruction's bytes.
        byte[] insn = [0xF0, 0x48, 0x0F, 0xC7, 0x4D, 0x20, 0x74, 0x66, 0x4C, 0x8B, 0x44, 0x24, 0x08, 0x4D, 0x89];
        byte[] payload = [(byte)insn.Length, .. insn];
        byte[] page = new byte[PageSize];
        ref KvmRun run = ref MemoryMarshal.AsRef<KvmRun>(page.AsSpan());
        run.ExitReason = (uint)KvmExitReason.InternalError;
        run.Internal.Suberror = (uint)KvmInternalError.Emulation;
        run.Internal.Ndata = 3;
        run.Internal.Data[0] = 1;
        run.Internal.Data[1] = BitConverter.ToUInt64(payload, 0);
        run.Internal.Data[2] = BitConverter.ToUInt64(payload, 8);

        var exit = KvmExitDispatcher.Describe(page);

        Assert.Contains("instruction bytes F0480FC74D20" + Convert.ToHexString(insn.AsSpan(6)), exit.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Describe_UnknownReason_IsErrorWithTheNumber()
    {
        byte[] page = new byte[PageSize];
        MemoryMarshal.AsRef<KvmRun>(page.AsSpan()).ExitReason = 999;

        var exit = KvmExitDispatcher.Describe(page);

        Assert.Equal(VcpuExitReason.Error, exit.Reason);
        Assert.Contains("unhandled KVM exit reason 999", exit.Detail, StringComparison.Ordinal);
    }
}
