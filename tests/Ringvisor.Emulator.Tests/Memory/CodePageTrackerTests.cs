// Self-modifying and cross-modifying code: stores to pages marked as holding decoded code must be reported.
using Ringvisor.Emulator.Memory;
using static Ringvisor.Emulator.Tests.Memory.PageTableBuilder;

namespace Ringvisor.Emulator.Tests.Memory;

public sealed class CodePageTrackerTests : IDisposable
{
    private const ulong Code = 0x20_0000;
    private readonly MmuTestBed _bed = new();
    private readonly List<ulong> _written = [];

    public CodePageTrackerTests()
    {
        _bed.System.CodePages.PageWritten += p =>
        {
            lock (_written)
            {
                _written.Add(p);
            }
        };
    }

    public void Dispose() => _bed.Dispose();

    [Fact]
    public void TryWrite_PageCachedWritableBeforeMarking_StillReportsWrite()
    {
        _bed.Tables.Map4K(0x40_0000, Code);
        _bed.UseLongMode();
        Assert.True(_bed.Mmu.TryWrite(0x40_0010, 1u)); // installs a fast write entry
        _bed.Mmu.MarkCodePage(Code + 0x10);
        Assert.True(_bed.System.CodePages.IsCodePage(Code));
        Assert.True(_bed.Mmu.TryWrite(0x40_0020, 0x90909090u));
        Assert.Equal([Code], _written);
        Assert.Equal(1, _bed.System.CodePages.WriteReports);
        Assert.False(_bed.System.CodePages.IsCodePage(Code));
        Assert.Equal(0x90909090u, BitConverter.ToUInt32(_bed.ReadPhysical(Code + 0x20, 4)));
    }

    [Fact]
    public void TryWrite_AfterReportUntilRemarked_NoFurtherReports()
    {
        _bed.UseLongMode();
        Assert.True(_bed.Mmu.SetPagingState(default));
        _bed.Mmu.MarkCodePage(Code);
        Assert.True(_bed.Mmu.TryWrite(Code, (byte)1));
        Assert.True(_bed.Mmu.TryWrite(Code + 1, (byte)2));
        Assert.True(_bed.Mmu.TryWrite(Code + 2, (byte)3));
        Assert.Single(_written);
        _bed.Mmu.MarkCodePage(Code);
        Assert.True(_bed.Mmu.TryWrite(Code + 3, (byte)4));
        Assert.Equal([Code, Code], _written);
    }

    [Fact]
    public void Generation_WriteToMarkedPage_Increments()
    {
        int g0 = _bed.System.CodePages.Generation(Code);
        Assert.True(_bed.Mmu.TryWrite(Code, 1u)); // not marked yet: unchanged
        Assert.Equal(g0, _bed.System.CodePages.Generation(Code));
        _bed.Mmu.MarkCodePage(Code);
        Assert.True(_bed.Mmu.TryWrite(Code, 2u));
        Assert.Equal(g0 + 1, _bed.System.CodePages.Generation(Code));
        Assert.Equal(-1, _bed.System.CodePages.Generation(MmuTestBed.MmioBase));
    }

    [Fact]
    public void PageWritten_SubscribedFromThreadsAtOnce_EveryHandlerReported()
    {
        // The vCPU threads of a VM start together and each one's translator setup may subscribe: none may be lost (a
        // lost subscription let the translation cache run units of rewritten code, a 2-vCPU boot's oops in the
        // kernel's text patching).
        const int Rounds = 100;
        const int Threads = 4;
        for (int round = 0; round < Rounds; round++)
        {
            var tracker = new CodePageTracker(0x10000);
            var calls = new int[Threads];
            using var barrier = new Barrier(Threads);
            var threads = new Thread[Threads];
            for (int t = 0; t < Threads; t++)
            {
                int id = t;
                threads[t] = new Thread(() =>
                {
                    barrier.SignalAndWait();
                    tracker.PageWritten += _ => Interlocked.Increment(ref calls[id]);
                });
                threads[t].Start();
            }

            foreach (var t in threads)
            {
                t.Join();
            }

            Assert.True(tracker.TryMark(0x3000));
            tracker.InvalidateRange(0x3000, 1);
            Assert.True(calls.All(c => c == 1), $"round {round}: handler calls {string.Join(",", calls)}");
        }
    }

    [Fact]
    public void TryRead_CodePage_NoReport()
    {
        _bed.Mmu.MarkCodePage(Code);
        Assert.True(_bed.Mmu.TryRead(Code, out ulong _));
        Assert.Empty(_written);
    }

    [Fact]
    public void TryWrite_OtherVcpuWithCachedWriteEntry_ReportsAfterPoll()
    {
        using var other = new Mmu(_bed.System);
        Assert.True(other.TryWrite(Code + 8, 1u)); // other vCPU caches a fast write entry (paging off)
        _bed.Mmu.MarkCodePage(Code);
        other.Poll(); // the instruction boundary
        Assert.True(other.TryWrite(Code + 8, 2u));
        Assert.Equal([Code], _written);
    }

    [Fact]
    public void TryWrite_CrossingIntoCodePage_ReportsOnlyThatPage()
    {
        _bed.Mmu.MarkCodePage(Code + 0x1000);
        Assert.True(_bed.Mmu.TryWrite(Code + 0xFFE, 0xFFFF_FFFFu));
        Assert.Equal([Code + 0x1000], _written);
    }

    [Fact]
    public void TryGetHostSpan_WriteToCodePage_NotDirect()
    {
        _bed.Mmu.MarkCodePage(Code);
        Assert.Equal(HostSpanResult.NotDirect, _bed.Mmu.TryGetHostSpan(Code, 16, MemoryAccessKind.Write, out _));
        Assert.Equal(HostSpanResult.Ok, _bed.Mmu.TryGetHostSpan(Code, 16, MemoryAccessKind.Read, out _));
    }

    [Fact]
    public void TryGetAtomic_CodePage_NeedsLockAndWriteReports()
    {
        _bed.Mmu.MarkCodePage(Code);
        Assert.Equal(AtomicAccess.NeedsLock, _bed.Mmu.TryGetAtomic(Code + 8, 8, out _));
        Assert.True(_bed.Mmu.TryWrite(Code + 8, 5UL));
        Assert.Equal([Code], _written);
    }

    [Fact]
    public void InvalidateRange_DmaOverCodePages_ReportsEachMarkedPage()
    {
        _bed.Mmu.MarkCodePage(Code);
        _bed.Mmu.MarkCodePage(Code + 0x2000);
        _bed.System.InvalidateRange(Code + 0x800, 0x2000);
        Assert.Equal([Code, Code + 0x2000], _written);
    }

    [Fact]
    public void WritePhysical_CodePage_Reports()
    {
        _bed.Mmu.MarkCodePage(Code);
        _bed.Mmu.WritePhysical(Code + 4, [1, 2]);
        Assert.Equal([Code], _written);
    }

    [Fact]
    public void MarkCodePage_OutsideRam_NotTracked()
    {
        _bed.Mmu.MarkCodePage(MmuTestBed.MmioBase);
        Assert.False(_bed.System.CodePages.IsCodePage(MmuTestBed.MmioBase));
    }

    [Fact]
    public void TryWrite_ThroughAliasMapping_ReportsPhysicalPage()
    {
        // Two linear pages map the same code frame: the report is by physical page, whichever alias is written.
        _bed.Tables.Map4K(0x40_0000, Code, P | RW);
        _bed.Tables.Map4K(0x7F_0000, Code, P | RW);
        _bed.UseLongMode();
        Assert.True(_bed.Mmu.TryWrite(0x7F_0000, 0u));
        _bed.Mmu.MarkCodePage(Code);
        Assert.True(_bed.Mmu.TryWrite(0x7F_0004, 1u));
        Assert.Equal([Code], _written);
    }
}
