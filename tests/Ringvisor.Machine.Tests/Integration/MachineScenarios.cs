// Whole-machine tests under the kvm engine: MachineBuilder + loaders + real devices + KVM. The guests are tiny
// 32-bit multiboot kernels (their CPL-0 code is emulated slowly on hosts without VT-x, so they stay short).
using System.Text;
using Ringvisor.Core.Vm;
using Ringvisor.TestSupport;

namespace Ringvisor.Machine.Tests.Integration;

public sealed class KvmMachineTests
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

    [KvmFact]
    public void Multiboot_KernelReceivesCommandLineAndMemoryMap()
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
                Engine = EngineKind.Kvm,
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

    [KvmFact]
    public void SpinningGuest_StopRequest_StopsPromptly()
    {
        string kernel = WriteKernel(TestKernels.SpinForever());
        try
        {
            var cfg = new MachineConfig { KernelPath = kernel, MemoryBytes = 32UL << 20, Engine = EngineKind.Kvm };
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

    [KvmFact]
    public void HaltWithInterruptsDisabled_StopsWithStatusZero()
    {
        string kernel = WriteKernel(TestKernels.HaltWithInterruptsDisabled());
        var console = new Console();
        try
        {
            var cfg = new MachineConfig { KernelPath = kernel, MemoryBytes = 32UL << 20, Engine = EngineKind.Kvm };
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
}
