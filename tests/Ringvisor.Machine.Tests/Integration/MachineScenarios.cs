// Whole-machine scenarios run under each engine (KvmMachineTests, BtMachineTests): MachineBuilder + loaders + real
// devices + the engine. The guests are tiny 32-bit multiboot kernels (their CPL-0 code is emulated slowly by KVM
// on hosts without VT-x, so they stay short).
using System.Text;
using Ringvisor.Core.Vm;
using Ringvisor.TestSupport;

namespace Ringvisor.Machine.Tests.Integration;

internal static class MachineScenarios
{
    private sealed class Console
    {
        private readonly StringBuilder _text = new();

        public void Write(ReadOnlySpan<byte> b)
        {
            lock (_text)
            {
                _text.Append(Encoding.ASCII.GetString(b));
            }
        }

        public override string ToString()
        {
            lock (_text)
            {
                return _text.ToString();
            }
        }
    }

    private static string WriteKernel(byte[] image)
    {
        string path = Path.Combine(Path.GetTempPath(), $"rv-mbtest-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(path, image);
        return path;
    }

    public static void Multiboot_KernelReceivesCommandLineAndMemoryMap(EngineKind engine)
    {
        string kernel = WriteKernel(TestKernels.EchoCommandLineAndMemoryMap(0x21));
        var console = new Console();
        try
        {
            var cfg = new MachineConfig
            {
                KernelPath = kernel,
                CommandLine = "hello multiboot rv=1",
                MemoryBytes = 64UL << 20,
                Engine = engine,
                DebugExit = true,
            };
            using var m = MachineBuilder.Build(cfg, console.Write);
            m.Vm.Start();
            var result = m.Vm.WaitForStop(TimeSpan.FromSeconds(60));

            Assert.Equal(VmStopReason.DebugExit, result.Reason);
            Assert.Equal((0x21 << 1) | 1, result.ExitStatus);
            Assert.Contains("hello multiboot rv=1", console.ToString());

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
        finally
        {
            File.Delete(kernel);
        }
    }

    public static void SpinningGuest_StopRequest_StopsPromptly(EngineKind engine)
    {
        string kernel = WriteKernel(TestKernels.SpinForever());
        try
        {
            var cfg = new MachineConfig { KernelPath = kernel, MemoryBytes = 32UL << 20, Engine = engine };
            using var m = MachineBuilder.Build(cfg, _ => { });
            m.Vm.Start();
            Thread.Sleep(200);
            Assert.Null(m.Vm.StopResult);
            m.Vm.Quit();
            var result = m.Vm.WaitForStop(TimeSpan.FromSeconds(10));
            Assert.Equal(VmStopReason.UserQuit, result.Reason);
            Assert.True(m.Vm.Pause(TimeSpan.FromSeconds(5)) || m.Vm.StopResult is not null);
        }
        finally
        {
            File.Delete(kernel);
        }
    }

    public static void HaltWithInterruptsDisabled_StopsWithStatusZero(EngineKind engine)
    {
        string kernel = WriteKernel(TestKernels.HaltWithInterruptsDisabled());
        var console = new Console();
        try
        {
            var cfg = new MachineConfig { KernelPath = kernel, MemoryBytes = 32UL << 20, Engine = engine };
            using var m = MachineBuilder.Build(cfg, console.Write);
            m.Vm.Start();
            var result = m.Vm.WaitForStop(TimeSpan.FromSeconds(30));
            Assert.Equal(VmStopReason.HaltedForever, result.Reason);
            Assert.Equal(0, result.ExitStatus);
            Assert.Equal("hi", console.ToString());
        }
        finally
        {
            File.Delete(kernel);
        }
    }

    private static VmStopResult RunToStop(EngineKind engine, byte[] image, TimeSpan limit)
    {
        string kernel = WriteKernel(image);
        try
        {
            var cfg = new MachineConfig { KernelPath = kernel, MemoryBytes = 32UL << 20, Engine = engine };
            using var m = MachineBuilder.Build(cfg, _ => { });
            m.Vm.Start();
            return m.Vm.WaitForStop(limit);
        }
        finally
        {
            File.Delete(kernel);
        }
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
        string kernel = WriteKernel(TestKernels.CountForever());
        try
        {
            var cfg = new MachineConfig { KernelPath = kernel, MemoryBytes = 32UL << 20, Engine = engine };
            using var m = MachineBuilder.Build(cfg, _ => { });
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
        finally
        {
            File.Delete(kernel);
        }
    }
}
