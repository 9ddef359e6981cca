// What the interpreter relies on beyond accesses: Epoch moves whenever a cached fetch translation may be stale,
// RequestPosted tells the owner that Poll has work, device accesses are counted, and page generations are readable
// by page number.
using Ringvisor.Emulator.Memory;
using static Ringvisor.Emulator.Tests.Memory.PageTableBuilder;

namespace Ringvisor.Emulator.Tests.Memory;

public sealed class MmuEpochAndRequestTests : IDisposable
{
    private const ulong Linear = 0x40_0000;
    private const ulong Frame = 0x20_0000;
    private readonly MmuTestBed _bed = new();

    public MmuEpochAndRequestTests()
    {
        _bed.Tables.Map4K(Linear, Frame, P | RW); // supervisor: CPL 0 with SMAP on may use it
        _bed.UseLongMode(PagingState.Cr4Smap);
    }

    public void Dispose() => _bed.Dispose();

    public static TheoryData<string> Invalidations => ["FlushAll", "FlushNonGlobal", "InvalidatePage", "WriteCr3", "SetPagingState"];

    [Theory]
    [MemberData(nameof(Invalidations))]
    public void Epoch_AfterInvalidation_Changes(string how)
    {
        var mmu = _bed.Mmu;
        long before = mmu.Epoch;
        switch (how)
        {
            case "FlushAll": mmu.FlushAll(); break;
            case "FlushNonGlobal": mmu.FlushNonGlobal(); break;
            case "InvalidatePage": mmu.InvalidatePage(Linear); break;
            case "WriteCr3": Assert.True(mmu.WriteCr3(mmu.State.Cr3)); break;
            default: Assert.True(mmu.SetPagingState(MmuTestBed.LongMode(_bed.Tables.Root, PagingState.Cr4Smap | PagingState.Cr4Pge))); break;
        }

        Assert.NotEqual(before, mmu.Epoch);
    }

    [Fact]
    public void Epoch_PrivilegeClassChange_ChangesButSameClassDoesNot()
    {
        var mmu = _bed.Mmu;
        long e0 = mmu.Epoch;
        mmu.SetPrivilege(1, 2);              // CPL 1: still the supervisor class
        Assert.Equal(e0, mmu.Epoch);
        mmu.SetPrivilege(0, PagingState.RflagsAc | 2); // SMAP on, AC = 1: the AC class
        long e1 = mmu.Epoch;
        Assert.NotEqual(e0, e1);
        mmu.SetPrivilege(3, 2);              // user class
        Assert.NotEqual(e1, mmu.Epoch);
    }

    [Fact]
    public void Epoch_Accesses_DoNotChangeIt()
    {
        var mmu = _bed.Mmu;
        Assert.True(mmu.TryRead(Linear, out uint _));
        long e = mmu.Epoch;
        Assert.True(mmu.TryWrite(Linear + 8, 5u));
        Assert.True(mmu.TryTranslateFetch(Linear, out _));
        Assert.Equal(e, mmu.Epoch);
    }

    [Fact]
    public void RequestPosted_OtherVcpuMarksCodePage_OnlyTheOthersAreTold()
    {
        using var other = new Mmu(_bed.System);
        Assert.True(other.SetPagingState(MmuTestBed.LongMode(_bed.Tables.Root)));
        int posted = 0, otherPosted = 0;
        _bed.Mmu.RequestPosted = () => posted++;
        other.RequestPosted = () => otherPosted++;

        other.MarkCodePage(Frame);
        Assert.Equal(1, posted);
        Assert.Equal(0, otherPosted); // the marking vCPU updates its own TLB directly

        _bed.System.RequestFlushAll();
        Assert.Equal(2, posted);
        Assert.Equal(1, otherPosted);
    }

    [Fact]
    public void Statistics_MmioAccess_CountsDeviceAccesses()
    {
        var mmu = _bed.Mmu;
        _bed.Tables.Map4K(0x60_0000, MmuTestBed.MmioBase, P | RW);
        long before = mmu.Statistics.DeviceAccesses;
        Assert.True(mmu.TryRead(0x60_0000, out uint _));
        Assert.True(mmu.TryWrite(0x60_0004, 1u));
        Assert.True(mmu.TryRead(Linear, out uint _)); // RAM: not a device access
        Assert.Equal(before + 2, mmu.Statistics.DeviceAccesses);
    }

    [Fact]
    public void PageGeneration_ByPageNumber_MatchesGenerationByAddress()
    {
        var code = _bed.System.CodePages;
        _bed.Mmu.MarkCodePage(Frame);
        Assert.True(_bed.Mmu.TryWrite(Linear + 0x10, 1u));
        Assert.Equal(1, code.PageGeneration(Frame >> 12));
        Assert.Equal(code.Generation(Frame + 0x123), code.PageGeneration(Frame >> 12));
        Assert.Equal(-1, code.PageGeneration(ulong.MaxValue >> 12));
    }
}
