// Linear reads and writes: operand sizes, page-crossing accesses, MMIO routing, the per-vCPU hook, instruction
// fetch, string spans and LOCK helpers.
using System.Runtime.Intrinsics;
using Ringvisor.Core.Memory;
using Ringvisor.Emulator.Memory;
using static Ringvisor.Emulator.Tests.Memory.PageTableBuilder;

namespace Ringvisor.Emulator.Tests.Memory;

public sealed class MmuAccessTests : IDisposable
{
    private readonly MmuTestBed _bed = new();

    public void Dispose() => _bed.Dispose();

    private void MapLong(ulong linear, ulong physical, ulong flags = P | RW | US)
    {
        _bed.Tables.Map4K(linear, physical, flags);
    }

    [Fact]
    public void TryWriteTryRead_AllScalarSizes_RoundTripThroughRam()
    {
        MapLong(0x40_0000, 0x20_0000);
        _bed.UseLongMode();
        Assert.True(_bed.Mmu.TryWrite(0x40_0001, (byte)0x11));
        Assert.True(_bed.Mmu.TryWrite(0x40_0002, (ushort)0x2233));
        Assert.True(_bed.Mmu.TryWrite(0x40_0005, 0x4455_6677u));
        Assert.True(_bed.Mmu.TryWrite(0x40_0011, 0x8899_AABB_CCDD_EEFFUL));
        var v128 = Vector128.Create(0x0102_0304_0506_0708UL, 0x1112_1314_1516_1718UL);
        Assert.True(_bed.Mmu.TryWrite(0x40_0023, v128));

        Assert.True(_bed.Mmu.TryRead(0x40_0001, out byte b));
        Assert.True(_bed.Mmu.TryRead(0x40_0002, out ushort w));
        Assert.True(_bed.Mmu.TryRead(0x40_0005, out uint d));
        Assert.True(_bed.Mmu.TryRead(0x40_0011, out ulong q));
        Assert.True(_bed.Mmu.TryRead(0x40_0023, out Vector128<ulong> x));
        Assert.Equal((byte)0x11, b);
        Assert.Equal((ushort)0x2233, w);
        Assert.Equal(0x4455_6677u, d);
        Assert.Equal(0x8899_AABB_CCDD_EEFFUL, q);
        Assert.Equal(v128, x);
        Assert.Equal(0x4455_6677u, BitConverter.ToUInt32(_bed.ReadPhysical(0x20_0005, 4)));
    }

    [Theory]
    [InlineData(1, 0x0000_0000_0000_00EFUL)]
    [InlineData(2, 0x0000_0000_0000_BEEFUL)]
    [InlineData(4, 0x0000_0000_DEAD_BEEFUL)]
    [InlineData(8, 0x0123_4567_DEAD_BEEFUL)]
    public void TryWriteSizedTryReadSized_FastSlowAndCrossing_WriteOnlyTheOperandBytes(int size, ulong expected)
    {
        MapLong(0x40_0000, 0x20_0000);
        MapLong(0x40_1000, 0x30_0000);
        _bed.UseLongMode();
        // First use (miss), second use (TLB hit), then an operand that ends in the next page.
        foreach (ulong la in new ulong[] { 0x40_0100, 0x40_0100, 0x40_0FFF })
        {
            Assert.True(_bed.Mmu.TryWriteSized(la - 1, Math.Min(size + 2, 8), ulong.MaxValue)); // guard bytes around the operand
            Assert.True(_bed.Mmu.TryWriteSized(la, size, 0x0123_4567_DEAD_BEEF));
            Assert.True(_bed.Mmu.TryReadSized(la, size, out ulong v));
            Assert.Equal(expected, v);
            if (size < 8)
            {
                Assert.True(_bed.Mmu.TryReadSized(la + (ulong)size, 1, out ulong after));
                Assert.Equal(0xFFUL, after);
            }
        }
    }

    [Fact]
    public void TryReadSystemSized_AtCpl3_ReadsSupervisorPage()
    {
        MapLong(0x40_0000, 0x20_0000, P | RW);
        _bed.UseLongMode(cpl: 3);
        Assert.True(_bed.Memory.TryWrite(0x20_0010UL, 0x1234u));
        Assert.True(_bed.Mmu.TryReadSystemSized(0x40_0010, 4, out ulong v));
        Assert.Equal(0x1234UL, v);
        Assert.False(_bed.Mmu.TryReadSized(0x40_0010, 4, out _));
        Assert.True(_bed.Mmu.TryWriteSystemSized(0x40_0010, 2, 0xAAAA));
        Assert.Equal(0xAAAAu, BitConverter.ToUInt32(_bed.ReadPhysical(0x20_0010, 4)));
    }

    [Fact]
    public void TryReadBytes_TenByteOperand_ReadsExactBytes()
    {
        MapLong(0x40_0000, 0x20_0000);
        MapLong(0x40_1000, 0x50_0000);
        _bed.UseLongMode();
        byte[] src = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        Assert.True(_bed.Mmu.TryWriteBytes(0x40_0FFB, src)); // 5 bytes in each page
        Assert.Equal(src[5..], _bed.ReadPhysical(0x50_0000, 5));
        var dst = new byte[10];
        Assert.True(_bed.Mmu.TryReadBytes(0x40_0FFB, dst));
        Assert.Equal(src, dst);
    }

    [Fact]
    public void TryRead_CrossingIntoNonContiguousFrame_ReadsBothFrames()
    {
        MapLong(0x40_0000, 0x20_0000);
        MapLong(0x40_1000, 0x35_0000);
        _bed.UseLongMode();
        Assert.True(_bed.Memory.TryWrite(0x20_0FFCUL, 0x4433_2211u));
        Assert.True(_bed.Memory.TryWrite(0x35_0000UL, 0x8877_6655u));
        Assert.True(_bed.Mmu.TryRead(0x40_0FFC, out ulong v));
        Assert.Equal(0x8877_6655_4433_2211UL, v);
    }

    [Fact]
    public void TryWrite_CrossingWhereSecondPageNotPresent_LeavesFirstPageUnchangedAndReportsSecondPage()
    {
        MapLong(0x40_0000, 0x20_0000);
        _bed.UseLongMode();
        Assert.True(_bed.Memory.TryWrite(0x20_0FF8UL, 0x1111_1111_1111_1111UL));
        Assert.False(_bed.Mmu.TryWrite(0x40_0FFC, 0xFFFF_FFFF_FFFF_FFFFUL));
        Assert.Equal(new MmuFault(MmuFaultKind.PageFault, PageFaultErrorCode.Write, 0x40_1000), _bed.Mmu.LastFault);
        Assert.Equal(0x1111_1111_1111_1111UL, BitConverter.ToUInt64(_bed.ReadPhysical(0x20_0FF8, 8)));
    }

    [Fact]
    public void TryWrite_CrossingIntoReadOnlyPage_LeavesFirstPageUnchanged()
    {
        MapLong(0x40_0000, 0x20_0000);
        MapLong(0x40_1000, 0x21_0000, P | US);
        _bed.UseLongMode(cpl: 3);
        Assert.Equal(MemoryAccessResult.Ok, _bed.Memory.Fill(0x20_0FF0, 16, 0xEE));
        Assert.False(_bed.Mmu.TryWriteBytes(0x40_0FF0, new byte[64]));
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.Write | PageFaultErrorCode.User, _bed.Mmu.LastFault.ErrorCode);
        Assert.Equal(0x40_1000UL, _bed.Mmu.LastFault.Address);
        Assert.All(_bed.ReadPhysical(0x20_0FF0, 16), b => Assert.Equal(0xEE, b));
    }

    [Fact]
    public void TryWriteBytes_ManyPages_WritesAll()
    {
        for (ulong i = 0; i < 20; i++)
        {
            MapLong(0x40_0000 + (i << 12), 0x80_0000 + ((19 - i) << 12));
        }

        _bed.UseLongMode();
        var data = new byte[20 * 4096 - 100];
        new Random(7).NextBytes(data);
        Assert.True(_bed.Mmu.TryWriteBytes(0x40_0050, data));
        var back = new byte[data.Length];
        Assert.True(_bed.Mmu.TryReadBytes(0x40_0050, back));
        Assert.Equal(data, back);
        Assert.Equal(data[..16], _bed.ReadPhysical(0x80_0000 + (19UL << 12) + 0x50, 16));
    }

    [Fact]
    public void TryRead_MmioPage_DispatchesOneNaturalAccessToDevice()
    {
        MapLong(0xFFFF_FFFF_FEC0_0000, MmuTestBed.MmioBase + 0x1000);
        _bed.UseLongMode();
        Assert.True(_bed.Mmu.TryRead(0xFFFF_FFFF_FEC0_0010, out uint v));
        Assert.Equal([(false, 0x1010UL, 4, (ulong)v)], _bed.Device.Accesses);
        Assert.Equal((byte)RecordingDevice.Expected(0x1010), (byte)v);
    }

    [Fact]
    public void TryWrite_MmioPage_ReachesDeviceAndNotRam()
    {
        _bed.UseLongMode(); // identity would need tables; use paging-disabled path instead below
        Assert.True(_bed.Mmu.SetPagingState(default));
        Assert.True(_bed.Mmu.TryWrite(MmuTestBed.MmioBase + 0x20, 0x1234_5678_9ABC_DEF0UL));
        Assert.Equal([(true, 0x20UL, 8, 0x1234_5678_9ABC_DEF0UL)], _bed.Device.Accesses);
    }

    [Fact]
    public void TryRead_MmioMisaligned_SplitIntoNaturallyAlignedPieces()
    {
        Assert.True(_bed.Mmu.TryRead(MmuTestBed.MmioBase + 0x3, out ulong v));
        var sizes = _bed.Device.Accesses.Select(a => (a.Offset, a.Size)).ToArray();
        Assert.Equal([(0x3UL, 1), (0x4UL, 4), (0x8UL, 2), (0xAUL, 1)], sizes);
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal(RecordingDevice.Expected(3 + (ulong)i), (byte)(v >> (8 * i)));
        }
    }

    [Fact]
    public void TryWrite_Mmio16Bytes_SplitIntoTwoQwords()
    {
        Assert.True(_bed.Mmu.TryWrite(MmuTestBed.MmioBase + 0x40, Vector128.Create(1UL, 2UL)));
        Assert.Equal([(true, 0x40UL, 8, 1UL), (true, 0x48UL, 8, 2UL)], _bed.Device.Accesses);
    }

    [Fact]
    public void TryRead_UnclaimedPhysicalAddress_ReadsAllOnes()
    {
        Assert.True(_bed.Mmu.TryRead(0xE800_0000, out uint v));
        Assert.Equal(0xFFFF_FFFFu, v);
        Assert.True(_bed.Mmu.TryWrite(0xE800_0000, 0u)); // dropped by the bus
        Assert.Equal(1, _bed.Bus.UnclaimedWrites);
    }

    [Fact]
    public void TryRead_CrossingFromRamIntoUnclaimed_MixesRamAndAllOnes()
    {
        // The top page of RAM (32 MiB) followed by nothing.
        ulong top = MmuTestBed.RamSize - 4;
        Assert.True(_bed.Memory.TryWrite(top, 0x0403_0201u));
        Assert.True(_bed.Mmu.TryRead(top, out ulong v));
        Assert.Equal(0xFFFF_FFFF_0403_0201UL, v);
    }

    [Fact]
    public void PhysicalHook_ClaimedRamPage_RoutesToHookAndLeavesRamAlone()
    {
        var hook = new TestHook(0x7000);
        _bed.Mmu.PhysicalHook = hook;
        Assert.True(_bed.Mmu.TryWrite(0x7080, 0xCAFEu));
        Assert.True(_bed.Mmu.TryRead(0x70F0, out uint v));
        Assert.Equal([(true, 0x7080UL, 4), (false, 0x70F0UL, 4)], hook.Accesses);
        Assert.Equal(0x7Fu, v);
        Assert.Equal(0u, BitConverter.ToUInt32(_bed.ReadPhysical(0x7080, 4)));
    }

    [Fact]
    public void TryTranslateFetch_RamPage_ReturnsPhysicalPageAndHostPointer()
    {
        MapLong(0x40_0000, 0x20_0000);
        _bed.UseLongMode();
        Assert.True(_bed.Memory.TryWrite(0x20_0123UL, (byte)0x90));
        Assert.True(_bed.Mmu.TryTranslateFetch(0x40_0123, out var page));
        Assert.Equal(0x40_0000UL, page.LinearPage);
        Assert.Equal(0x20_0000UL, page.PhysicalPage);
        Assert.Equal(_bed.Memory.GetHostPointer(0x20_0000, 4096), page.HostPage);
        Assert.True(_bed.Mmu.TryTranslateFetch(0x40_0FFF, out var again)); // TLB hit path
        Assert.Equal(page, again);
    }

    [Fact]
    public void TryTranslateFetch_NxPage_FaultsWithInstructionFetchBit()
    {
        MapLong(0x40_0000, 0x20_0000, P | RW | US | XD);
        _bed.UseLongMode(cpl: 3);
        Assert.True(_bed.Mmu.TryRead(0x40_0000, out byte _));
        Assert.False(_bed.Mmu.TryTranslateFetch(0x40_0000, out _));
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.User | PageFaultErrorCode.InstructionFetch, _bed.Mmu.LastFault.ErrorCode);
    }

    [Fact]
    public void TryFetch_MmioPage_ReadsThroughBusAndHasNoHostPage()
    {
        MapLong(0x40_0000, MmuTestBed.MmioBase);
        _bed.UseLongMode();
        Assert.True(_bed.Mmu.TryTranslateFetch(0x40_0010, out var page));
        Assert.False(page.IsRam);
        Assert.Equal(MmuTestBed.MmioBase, page.PhysicalPage);
        var bytes = new byte[4];
        Assert.True(_bed.Mmu.TryFetch(0x40_0010, bytes));
        Assert.Equal(RecordingDevice.Expected(0x12), bytes[2]);
    }

    [Fact]
    public void TryFetch_CrossingIntoNonExecutablePage_Faults()
    {
        MapLong(0x40_0000, 0x20_0000);
        MapLong(0x40_1000, 0x21_0000, P | RW | US | XD);
        _bed.UseLongMode();
        Assert.False(_bed.Mmu.TryFetch(0x40_0FFE, new byte[4]));
        Assert.Equal(0x40_1000UL, _bed.Mmu.LastFault.Address);
        Assert.True(_bed.Mmu.TryFetch(0x40_0FFE, new byte[2]));
    }

    [Fact]
    public void TryGetHostSpan_InsideRamPage_IsLiveViewOfGuestMemory()
    {
        MapLong(0x40_0000, 0x20_0000);
        _bed.UseLongMode();
        Assert.Equal(HostSpanResult.Ok, _bed.Mmu.TryGetHostSpan(0x40_0100, 256, MemoryAccessKind.Write, out var span));
        span.Fill(0x5A);
        Assert.All(_bed.ReadPhysical(0x20_0100, 256), b => Assert.Equal(0x5A, b));
        Assert.Equal(HostSpanResult.NotDirect, _bed.Mmu.TryGetHostSpan(0x40_0F00, 512, MemoryAccessKind.Read, out _));
        Assert.Equal(HostSpanResult.Fault, _bed.Mmu.TryGetHostSpan(0x90_0000, 16, MemoryAccessKind.Read, out _));
    }

    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(int.MaxValue - 4000)]
    [InlineData(4097)]
    [InlineData(0)]
    [InlineData(-1)]
    public void TryGetHostSpan_LengthBeyondPage_NotDirectWithoutOverflow(int length)
    {
        MapLong(0x40_0000, 0x20_0000);
        _bed.UseLongMode();
        Assert.Equal(HostSpanResult.NotDirect, _bed.Mmu.TryGetHostSpan(0x40_0FF0, length, MemoryAccessKind.Write, out var span));
        Assert.True(span.IsEmpty);
    }

    [Fact]
    public void TryGetHostSpan_Mmio_NotDirect()
    {
        Assert.Equal(HostSpanResult.NotDirect, _bed.Mmu.TryGetHostSpan(MmuTestBed.MmioBase, 16, MemoryAccessKind.Read, out _));
        Assert.Empty(_bed.Device.Accesses);
    }

    [Fact]
    public void TryGetAtomic_AlignedRam_ReturnsPointerUsableWithInterlocked()
    {
        MapLong(0x40_0000, 0x20_0000);
        _bed.UseLongMode();
        Assert.Equal(AtomicAccess.Direct, _bed.Mmu.TryGetAtomic(0x40_0008, 8, out nint p));
        unsafe
        {
            // SAFETY: the MMU returned a pointer to 8 aligned bytes of guest RAM.
            Interlocked.Add(ref *(long*)p, 41);
        }

        Assert.Equal(41UL, BitConverter.ToUInt64(_bed.ReadPhysical(0x20_0008, 8)));
        Assert.True((_bed.Tables.Read64(_bed.Tables.Entry64(0x40_0000, 1)) & D) != 0);
    }

    [Fact]
    public void TryGetAtomic_Misaligned_NeedsLock()
    {
        MapLong(0x40_0000, 0x20_0000);
        MapLong(0x40_1000, 0x21_0000);
        _bed.UseLongMode();
        Assert.Equal(AtomicAccess.NeedsLock, _bed.Mmu.TryGetAtomic(0x40_0004, 8, out _));
        Assert.Equal(AtomicAccess.NeedsLock, _bed.Mmu.TryGetAtomic(0x40_0FFE, 4, out _));
    }

    [Fact]
    public void TryGetAtomic_ReadOnlyOrMissing_FaultsAsWrite()
    {
        MapLong(0x40_0000, 0x20_0000, P | US);
        _bed.UseLongMode(cpl: 3);
        Assert.Equal(AtomicAccess.Fault, _bed.Mmu.TryGetAtomic(0x40_0000, 4, out _));
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.Write | PageFaultErrorCode.User, _bed.Mmu.LastFault.ErrorCode);
        Assert.Equal(AtomicAccess.Fault, _bed.Mmu.TryGetAtomic(0x50_0000, 4, out _));
        Assert.Equal(PageFaultErrorCode.Write | PageFaultErrorCode.User, _bed.Mmu.LastFault.ErrorCode);
    }

    [Fact]
    public void TryGetAtomic_Mmio_NeedsLock()
    {
        Assert.Equal(AtomicAccess.NeedsLock, _bed.Mmu.TryGetAtomic(MmuTestBed.MmioBase, 4, out _));
    }

    [Fact]
    public void TryWrite_Ram_MarksDirtyBitmap()
    {
        MapLong(0x40_0000, 0x20_0000);
        _bed.UseLongMode();
        _ = _bed.Memory.Dirty.TakeDirtyPages();
        Assert.True(_bed.Mmu.TryWrite(0x40_0000, 1));
        Assert.Contains(0x200UL, _bed.Memory.Dirty.TakeDirtyPages());
    }

    [Fact]
    public void RequestFlushAll_AfterTakingDirtyLog_NextFastStoreMarksPageAgain()
    {
        MapLong(0x40_0000, 0x20_0000);
        _bed.UseLongMode();
        Assert.True(_bed.Mmu.TryWrite(0x40_0000, 1));
        Assert.Contains(0x200UL, _bed.Memory.Dirty.TakeDirtyPages());

        // The migration round's contract: take the log, then ask every vCPU to refill its write entries.
        _bed.System.RequestFlushAll();
        _bed.Mmu.Poll();
        Assert.True(_bed.Mmu.TryWrite(0x40_0008, 2));
        Assert.Contains(0x200UL, _bed.Memory.Dirty.TakeDirtyPages());
    }

    private sealed class TestHook(ulong page) : IPhysicalAccessHook
    {
        public List<(bool Write, ulong Address, int Size)> Accesses { get; } = [];

        public bool Claims(ulong physicalAddress) => (physicalAddress & ~0xFFFUL) == page;

        public void Read(ulong physicalAddress, Span<byte> data)
        {
            Accesses.Add((false, physicalAddress, data.Length));
            data.Clear();
            data[0] = 0x7F;
        }

        public void Write(ulong physicalAddress, ReadOnlySpan<byte> data) => Accesses.Add((true, physicalAddress, data.Length));
    }
}
