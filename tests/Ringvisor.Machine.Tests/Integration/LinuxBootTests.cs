// The default guest (Debian's cloud kernel + busybox initramfs) boots under the bt engine and runs a scripted
// session: uname, /proc/cpuinfo, /proc/interrupts, a shell loop, md5sum of generated data checked against the
// host's md5 of the same bytes, and poweroff. These are the slow tests of the suite (a boot executes ~1.5 billion
// guest instructions in the interpreter).
using System.Security.Cryptography;
using System.Text;
using Ringvisor.Core.Vm;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Integration;

public sealed class LinuxBootTests
{
    private static readonly TimeSpan s_bootLimit = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan s_commandLimit = TimeSpan.FromMinutes(3);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void DefaultGuest_Bt_BootsAndRunsScriptedSession(int cpus)
    {
        var image = DefaultGuestImage.EnsureBuilt(null);
        var console = new GuestConsole();
        var cfg = new MachineConfig
        {
            KernelPath = image.Kernel,
            InitrdPaths = [image.Initrd],
            CommandLine = image.DefaultCommandLine,
            MemoryBytes = 256UL << 20,
            VcpuCount = cpus,
            Engine = EngineKind.Bt,
        };
        using var m = MachineBuilder.Build(cfg, console.Write);
        bool Stopped() => m.Vm.StopResult is not null;
        m.Vm.Start();
        console.WaitFor(InitScript.ReadyLine, s_bootLimit, Stopped);
        console.WaitFor("# ", s_commandLimit, Stopped);

        // Each command ends by printing a marker computed by the shell, so its echo cannot match.
        string Run(string command)
        {
            var token = Guid.NewGuid().ToString("N")[..8];
            m.SendConsoleInput(Encoding.ASCII.GetBytes($"{command}; echo END-{token}-$((6*7))\n"));
            string output = console.WaitFor($"END-{token}-42", s_commandLimit, Stopped);
            return output;
        }

        string uname = Run("uname -r");
        Assert.Contains(image.KernelVersion, uname);

        string cpuinfo = Run("grep -c ^processor /proc/cpuinfo");
        Assert.Contains($"\n{cpus}\r", cpuinfo.Replace("\r\r", "\r"));

        string interrupts = Run("cat /proc/interrupts");
        Assert.Contains("CPU0", interrupts);
        if (cpus > 1)
        {
            Assert.Contains("CPU1", interrupts);
        }

        string loop = Run("i=0; s=0; while [ $i -lt 500 ]; do s=$((s+i*i)); i=$((i+1)); done; echo sum=$s");
        Assert.Contains($"sum={Enumerable.Range(0, 500).Sum(i => (long)i * i)}", loop);

        // 2000 lines "line N" generated in the guest; the host computes the md5 of the same bytes.
        string md5 = Run("i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done | md5sum");
        var expected = new StringBuilder();
        for (int i = 0; i < 2000; i++)
        {
            expected.Append("line ").Append(i).Append('\n');
        }

#pragma warning disable CA5351 // md5sum is what the guest runs; this is a checksum, not security
        string hostMd5 = Convert.ToHexStringLower(MD5.HashData(Encoding.ASCII.GetBytes(expected.ToString())));
#pragma warning restore CA5351
        Assert.Contains(hostMd5, md5);

        m.SendConsoleInput("poweroff -f\n"u8);
        var result = m.Vm.WaitForStop(s_commandLimit);
        Assert.True(result.Reason is VmStopReason.HaltedForever or VmStopReason.PowerOff, $"{result.Reason}: {result.Detail}");
        Assert.Equal(0, result.ExitStatus);
    }
}
