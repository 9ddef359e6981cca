// Application-processor start-up (SDM Vol. 3A §8.4.4): wait-for-SIPI, real mode at vector << 12, INIT.
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Interpreter;

public sealed class SmpStartupTests
{
    [Fact]
    public void ApplicationProcessor_Sipi_StartsInRealModeAtVectorPage()
    {
        var bsp = new FakeLocalApic();
        var ap = new FakeLocalApic();
        using var g = new GuestHarness([bsp, ap]);
        g.Write(0x8000, GuestHarness.Assemble(16, 0x8000, a =>
        {
            a.mov(ax, cs);
            a.mov(__word_ptr[0x9000], ax);
            a.mov(__word_ptr[0x9002], 0x1234);
            a.cli();
            a.hlt();
        }));
        using var vcpu = new BtVcpu(g.Host, 1);

        var starter = new Thread(() =>
        {
            Thread.Sleep(50);
            ap.RaiseInit();
            ap.RaiseStartup(0x08);
        });
        starter.Start();
        var exit = vcpu.Run();
        starter.Join();

        Assert.Equal(VcpuExitReason.Halted, exit.Reason);
        Assert.True(g.Memory.TryRead(0x9000, out ushort codeSeg));
        Assert.True(g.Memory.TryRead(0x9002, out ushort marker));
        Assert.Equal(0x0800, codeSeg);
        Assert.Equal(0x1234, marker);
    }

    [Fact]
    public void ApplicationProcessor_BeforeSipi_KickReturnsWithoutRunningCode()
    {
        var bsp = new FakeLocalApic();
        var ap = new FakeLocalApic();
        using var g = new GuestHarness([bsp, ap]);
        using var vcpu = new BtVcpu(g.Host, 1);

        var kicker = new Thread(() =>
        {
            Thread.Sleep(50);
            vcpu.Kick();
        });
        kicker.Start();
        var exit = vcpu.Run();
        kicker.Join();

        Assert.Equal(VcpuExitReason.Kicked, exit.Reason);
        Assert.Equal(0L, vcpu.InstructionsExecuted);
    }
}
