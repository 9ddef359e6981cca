using Ringvisor.Core.Bus;
using Ringvisor.Devices.Platform;
using Ringvisor.Devices.Tests.Support;

namespace Ringvisor.Devices.Tests.Platform;

public class EmulatedPlatformTests
{
    [Fact]
    public void PitThroughIoApic_WiredPlatform_TimerInterruptReachesBsp()
    {
        var clock = new FakeClock();
        using var platform = EmulatedPlatform.Create(2, clock, clock);
        var pio = new IoBus("pio", 0x10000);
        var mmio = new IoBus("mmio", 1UL << 52);
        platform.RegisterOn(pio, mmio);

        // Guest view: enable the BSP's APIC, route IOAPIC pin 2 (ISA IRQ 0) to vector 0x30, start PIT mode 2.
        platform.LocalApics[0].Write32(0xF0, 0x1FF);
        mmio.Write(IoApic.DefaultBase, BitConverter.GetBytes(0x14u));
        mmio.Write(IoApic.DefaultBase + 0x10, BitConverter.GetBytes(0x30u));
        pio.Write(0x43, [0x34]);
        pio.Write(0x40, [0x9B]);
        pio.Write(0x40, [0x2E]); // 11931: about 100 Hz

        Assert.False(platform.LocalApics[0].HasInterrupt);
        clock.Advance(10_000_000);
        Assert.Equal(0x30, platform.LocalApics[0].AcknowledgeInterrupt());
        Assert.False(platform.LocalApics[1].HasInterrupt);
    }

    [Fact]
    public void PicOnly_WiredPlatform_TimerInterruptPassesThroughDisabledApic()
    {
        var clock = new FakeClock();
        using var platform = EmulatedPlatform.Create(1, clock, clock);
        var pio = new IoBus("pio", 0x10000);
        platform.RegisterOn(pio, new IoBus("mmio", 1UL << 52));
        foreach (byte b in new byte[] { 0x11, 0x08, 0x04, 0x01 })
        {
            pio.Write(b == 0x11 ? 0x20UL : 0x21UL, [b]);
        }

        pio.Write(0x43, [0x34]);
        pio.Write(0x40, [0x00]);
        pio.Write(0x40, [0x10]);
        clock.Advance(5_000_000);
        Assert.True(platform.LocalApics[0].HasInterrupt);
        Assert.Equal(0x08, platform.LocalApics[0].AcknowledgeInterrupt());
    }
}
