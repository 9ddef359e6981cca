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

    [Fact]
    public void LockedIncrement_TwoVcpusOnTwoThreads_LosesNoUpdates()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        const int iterations = 300_000;
        g.Code64(GuestHarness.CodeBase, a =>
        {
            var top = a.CreateLabel();
            a.mov(ecx, iterations);
            a.mov(rbx, 0x20000UL);
            a.Label(ref top);
            a.@lock.inc(__qword_ptr[rbx]);
            a.mov(eax, 1);
            a.@lock.xadd(__dword_ptr[rbx + 8], eax);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        });
        using var second = new BtVcpu(g.Host, 1);
        second.SetState(g.Vcpu.GetState());

        // Start both vCPUs together so their loops overlap in time.
        using var barrier = new Barrier(2);
        VcpuExit exit2 = default;
        var t = new Thread(() =>
        {
            barrier.SignalAndWait();
            exit2 = second.Run();
        });
        t.Start();
        barrier.SignalAndWait();
        var exit1 = g.Run();
        t.Join();

        Assert.Equal(VcpuExitReason.Halted, exit1.Reason);
        Assert.Equal(VcpuExitReason.Halted, exit2.Reason);
        Assert.Equal((ulong)(2 * iterations), g.Read64(0x20000));
        Assert.True(g.Memory.TryRead(0x20008, out uint counter));
        Assert.Equal((uint)(2 * iterations), counter);
    }
}
