using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Memory;

namespace Ringvisor.Emulator.Tests.Memory;

public class PagingStateTests
{
    [Theory]
    [InlineData(0x11UL, 0UL, 0UL, PagingMode.None)]
    [InlineData(0x8000_0011UL, 0UL, 0UL, PagingMode.TwoLevel)]
    [InlineData(0x8000_0011UL, 0x10UL, 0UL, PagingMode.TwoLevel)]
    [InlineData(0x8000_0011UL, 0x20UL, 0UL, PagingMode.Pae)]
    [InlineData(0x8000_0011UL, 0x20UL, 0x800UL, PagingMode.Pae)]
    [InlineData(0x8000_0011UL, 0x20UL, 0x500UL, PagingMode.FourLevel)]
    [InlineData(0x11UL, 0x20UL, 0x100UL, PagingMode.None)]
    public void Mode_ControlBits_DerivesSdmTable41Mode(ulong cr0, ulong cr4, ulong efer, PagingMode expected)
    {
        var s = new PagingState { Cr0 = cr0, Cr4 = cr4, Efer = efer };
        Assert.Equal(expected, s.Mode);
    }

    [Fact]
    public void From_SystemRegisters_CopiesControlRegistersCplAndFlags()
    {
        var sys = SystemRegisters.Reset();
        sys.Cr0 = 0x8001_0011;
        sys.Cr3 = 0x1234_5000;
        sys.Cr4 = 0x20;
        sys.Efer = 0xD01;
        var s = PagingState.From(sys, 3, 0x40002);
        Assert.Equal(PagingMode.FourLevel, s.Mode);
        Assert.Equal(0x1234_5000UL, s.Cr3);
        Assert.Equal(3, s.Cpl);
        Assert.True(s.AlignmentCheckFlag);
        Assert.True(s.WriteProtect);
        Assert.True(s.NoExecuteEnabled);
    }
}
