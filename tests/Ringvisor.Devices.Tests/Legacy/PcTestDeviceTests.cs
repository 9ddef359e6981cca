using Ringvisor.Devices.Legacy;
using Ringvisor.Devices.Tests.Support;

namespace Ringvisor.Devices.Tests.Legacy;

public class PcTestDeviceTests
{
    private readonly RecordingLine[] _lines = [.. Enumerable.Range(0, PcTestDevice.IrqLineCount).Select(_ => new RecordingLine())];

    private PcTestDevice Create() => new(i => _lines[i]);

    [Fact]
    public void IoPort_Write_ReadsBack()
    {
        var dev = Create();
        dev.IoPort.Write32(0, 0x1234_5678);
        Assert.Equal(0x1234_5678u, dev.IoPort.Read32(0));
        dev.IoPort.Out8(0, 0x99);
        Assert.Equal(0x1234_5699u, dev.IoPort.Read32(0));
    }

    [Fact]
    public void IrqLines_WriteByte_SetsThatLineLevel()
    {
        var dev = Create();
        dev.IrqLines.Out8(0x0E, 1);
        Assert.True(_lines[0x0E].Level);
        Assert.False(_lines[0x0D].Level);
        dev.IrqLines.Out8(0x0E, 0);
        Assert.False(_lines[0x0E].Level);
        Assert.Equal(1, _lines[0x0E].RisingEdges);
    }

    [Fact]
    public void IrqLines_WriteBeyondTheLastLine_IsIgnored()
    {
        var dev = Create();
        dev.IrqLines.Write32(PcTestDevice.IrqLineCount - 1, 0x0101_0101);
        Assert.True(_lines[PcTestDevice.IrqLineCount - 1].Level);
        Assert.Equal(1, _lines.Count(l => l.Level));
    }

    [Fact]
    public void IoMem_WriteAtTheEnd_ClipsAndReadsZeroPastIt()
    {
        var dev = Create();
        dev.IoMem.Write32(PcTestDevice.IoMemLength - 2, 0xAABB_CCDD);
        Assert.Equal(0x0000_CCDDu, dev.IoMem.Read32(PcTestDevice.IoMemLength - 2));
        Assert.Equal(0u, dev.IoMem.Read32(0x1_0000_0000));
    }

    [Fact]
    public void FlushPage_Write_IsAcceptedAndReadsZero()
    {
        var dev = Create();
        dev.FlushPage.Write32(0, 0x0010_0000);
        Assert.Equal(0u, dev.FlushPage.Read32(0));
    }
}
