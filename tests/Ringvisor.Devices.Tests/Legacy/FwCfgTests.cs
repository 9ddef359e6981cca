using System.Text;
using Ringvisor.Devices.Legacy;
using Ringvisor.Devices.Tests.Support;

namespace Ringvisor.Devices.Tests.Legacy;

public class FwCfgTests
{
    private const ulong Selector = 0;
    private const ulong Data = 1;

    private static byte[] ReadItem(FwCfg cfg, ushort key, int length)
    {
        cfg.Write16(Selector, key);
        var bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = cfg.In8(Data);
        }

        return bytes;
    }

    [Fact]
    public void Read_Signature_IsQemu()
    {
        Assert.Equal("QEMU", Encoding.ASCII.GetString(ReadItem(new FwCfg(), FwCfg.KeySignature, 4)));
    }

    [Fact]
    public void Read_Id_OffersTraditionalInterfaceWithoutDma()
    {
        Assert.Equal(1u, BitConverter.ToUInt32(ReadItem(new FwCfg(), FwCfg.KeyId, 4)));
    }

    [Theory]
    [InlineData(256UL << 20, 1)]
    [InlineData(5UL << 30, 3)]
    public void ForPc_RamSizeAndCpuCount_ReadBackLittleEndian(ulong ram, int cpus)
    {
        var cfg = FwCfg.ForPc(ram, cpus);
        Assert.Equal(ram, BitConverter.ToUInt64(ReadItem(cfg, FwCfg.KeyRamSize, 8)));
        Assert.Equal((ushort)cpus, BitConverter.ToUInt16(ReadItem(cfg, FwCfg.KeyCpuCount, 2)));
        Assert.Equal((ushort)cpus, BitConverter.ToUInt16(ReadItem(cfg, FwCfg.KeyMaxCpus, 2)));
    }

    [Fact]
    public void Read_PastItemEnd_ReturnsZero()
    {
        var cfg = FwCfg.ForPc(0x1122_3344_5566_7788, 2);
        byte[] bytes = ReadItem(cfg, FwCfg.KeyCpuCount, 6);
        Assert.Equal(new byte[] { 2, 0, 0, 0, 0, 0 }, bytes);
    }

    [Fact]
    public void Read_UnknownKey_ReturnsZeros()
    {
        Assert.All(ReadItem(new FwCfg(), 0x3FFF, 8), b => Assert.Equal(0, b));
    }

    [Fact]
    public void Write_Selector_RestartsTheItem()
    {
        var cfg = new FwCfg();
        Assert.Equal((byte)'Q', ReadItem(cfg, FwCfg.KeySignature, 2)[0]);
        Assert.Equal((byte)'Q', ReadItem(cfg, FwCfg.KeySignature, 1)[0]);
    }

    [Fact]
    public void Write_SelectorWithWriteChannelBit_SelectsTheSameItem()
    {
        var cfg = FwCfg.ForPc(64UL << 20, 4);
        Assert.Equal((ushort)4, BitConverter.ToUInt16(ReadItem(cfg, (ushort)(FwCfg.KeyCpuCount | 0x4000), 2)));
        Assert.Equal(FwCfg.KeyCpuCount, cfg.Selector);
    }

    [Fact]
    public void Write_DataPortAndByteSelector_AreIgnored()
    {
        var cfg = new FwCfg();
        cfg.Write16(Selector, FwCfg.KeySignature);
        cfg.Out8(Data, 0x55);
        cfg.Out8(Selector, (byte)FwCfg.KeyId);
        Assert.Equal(FwCfg.KeySignature, cfg.Selector);
        Assert.Equal((byte)'Q', cfg.In8(Data));
    }

    [Fact]
    public void Read_SelectorPort_ReadsZeroAndDoesNotAdvance()
    {
        var cfg = new FwCfg();
        cfg.Write16(Selector, FwCfg.KeySignature);
        Assert.Equal(0, cfg.In8(Selector));
        Assert.Equal((byte)'Q', cfg.In8(Data));
    }

    [Fact]
    public void Read_FileDirectory_HasNoFiles()
    {
        Assert.Equal(new byte[4], ReadItem(new FwCfg(), FwCfg.KeyFileDirectory, 4));
    }

    [Fact]
    public void SaveRestore_MidItem_ResumesAtTheSameByte()
    {
        var cfg = new FwCfg();
        cfg.Write16(Selector, FwCfg.KeySignature);
        cfg.In8(Data);
        FwCfgState state = cfg.Save();

        var other = new FwCfg();
        other.Restore(state);
        Assert.Equal((byte)'E', other.In8(Data));
    }

    [Fact]
    public void Restore_WrongVersion_Throws()
    {
        Assert.Throws<ArgumentException>(() => new FwCfg().Restore(new FwCfgState(99, 0, 0)));
    }
}
