// Whole-machine scenarios run under each engine (KvmMachineTests, BtMachineTests): MachineBuilder + loaders + real
// devices + the engine. The guests are tiny 32-bit multiboot kernels (their CPL-0 code is emulated slowly by KVM
// on hosts without VT-x, so they stay short).
using Ringvisor.Core.Vm;

namespace Ringvisor.Machine.Tests.Integration;

internal static class MachineScenarios
{
    public static void Multiboot_KernelReceivesCommandLineAndMemoryMap(EngineKind engine)
    {
        var console = new GuestConsole();
        using var m = TestMachine.Build(engine, TestKernels.EchoCommandLineAndMemoryMap(0x21), console.Write,
            commandLine: "hello multiboot rv=1", memory: 64UL << 20, debugExit: true);
        m.Vm.Start();
        var result = m.Vm.WaitForStop(TimeSpan.FromSeconds(60));

        Assert.Equal(VmStopReason.DebugExit, result.Reason);
        Assert.Equal((0x21 << 1) | 1, result.ExitStatus);
        Assert.Contains("hello multiboot rv=1", console.Text);

        var mem = m.Vm.Memory;
        Assert.True(mem.TryRead(TestKernels.ResultArea - 8, out uint flags));
        Assert.True(mem.TryRead(TestKernels.ResultArea - 4, out uint mmapLength));
        Assert.NotEqual(0u, flags & (1u << 6)); // mmap valid
        Assert.NotEqual(0u, flags & (1u << 2)); // cmdline valid
        Assert.True(mmapLength >= 24 && mmapLength % 24 == 0, $"mmap length {mmapLength}");

        // Each entry: u32 size (20), u64 base, u64 length, u32 type. Usable RAM must cover the low 640 KiB
        // start and reach the top of guest memory, with nothing usable past it.
        ulong usable = 0, top = 0;
        for (uint off = 0; off < mmapLength; off += 24)
        {
            Assert.True(mem.TryRead(TestKernels.ResultArea + off, out uint size));
            Assert.Equal(20u, size);
            mem.TryRead(TestKernels.ResultArea + off + 4, out ulong b);
            mem.TryRead(TestKernels.ResultArea + off + 12, out ulong len);
            mem.TryRead(TestKernels.ResultArea + off + 20, out uint type);
            if (type == 1)
            {
                usable += len;
                top = Math.Max(top, b + len);
            }
        }

        Assert.Equal(64UL << 20, top);
        Assert.InRange(usable, 60UL << 20, 64UL << 20);
    }

    public static void SpinningGuest_StopRequest_StopsPromptly(EngineKind engine)
    {
        using var m = TestMachine.Build(engine, TestKernels.SpinForever());
        m.Vm.Start();
        Thread.Sleep(200);
        Assert.Null(m.Vm.StopResult);
        m.Vm.Quit();
        var result = m.Vm.WaitForStop(TimeSpan.FromSeconds(10));
        Assert.Equal(VmStopReason.UserQuit, result.Reason);
        Assert.True(m.Vm.Pause(TimeSpan.FromSeconds(5)) || m.Vm.StopResult is not null);
    }

    public static void HaltWithInterruptsDisabled_StopsWithStatusZero(EngineKind engine)
    {
        var console = new GuestConsole();
        using var m = TestMachine.Build(engine, TestKernels.HaltWithInterruptsDisabled(), console.Write);
        m.Vm.Start();
        var result = m.Vm.WaitForStop(TimeSpan.FromSeconds(30));
        Assert.Equal(VmStopReason.HaltedForever, result.Reason);
        Assert.Equal(0, result.ExitStatus);
        Assert.Equal("hi", console.Text);
    }

    private static VmStopResult RunToStop(EngineKind engine, byte[] image, TimeSpan limit)
    {
        using var m = TestMachine.Build(engine, image);
        m.Vm.Start();
        return m.Vm.WaitForStop(limit);
    }

    public static void I8042ResetPulse_StopsWithResetStatusZero(EngineKind engine)
    {
        var r = RunToStop(engine, TestKernels.I8042Reset(), TimeSpan.FromSeconds(30));
        Assert.Equal(VmStopReason.Reset, r.Reason);
        Assert.Equal(0, r.ExitStatus);
    }

    public static void TripleFault_StopsWithStatusThree(EngineKind engine)
    {
        var r = RunToStop(engine, TestKernels.TripleFault(), TimeSpan.FromSeconds(30));
        Assert.True(r.Reason == VmStopReason.TripleFault, $"{r.Reason}: {r.Detail}");
        Assert.Equal(3, r.ExitStatus);
    }

    public static void PauseResume_GuestMakesNoProgressWhilePaused(EngineKind engine)
    {
        using var m = TestMachine.Build(engine, TestKernels.CountForever());
        m.Vm.Start();
        uint Counter()
        {
            Assert.True(m.Vm.Memory.TryRead(TestKernels.ResultArea, out uint v));
            return v;
        }

        SpinWait.SpinUntil(() => Counter() > 0, TimeSpan.FromSeconds(20));
        Assert.True(m.Vm.Pause(TimeSpan.FromSeconds(10)));
        uint paused = Counter();
        Thread.Sleep(150);
        Assert.Equal(paused, Counter());
        m.Vm.Resume();
        Assert.True(SpinWait.SpinUntil(() => Counter() != paused, TimeSpan.FromSeconds(20)));
        m.Vm.Quit();
        Assert.Equal(VmStopReason.UserQuit, m.Vm.WaitForStop(TimeSpan.FromSeconds(10)).Reason);
    }
}
