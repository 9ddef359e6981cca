// The default guest (Debian's cloud kernel + busybox initramfs) boots under the bt engine and runs a scripted
// session: uname, /proc/cpuinfo, /proc/interrupts, a shell loop, md5sum of generated data checked against the
// host's md5 of the same bytes, and poweroff. These are the slow tests of the suite (a boot executes ~1.5 billion
// guest instructions in the interpreter).
using System.Security.Cryptography;
using System.Text;
using Ringvisor.Core.Vm;

namespace Ringvisor.Machine.Tests.Integration;

public sealed class LinuxBootTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void DefaultGuest_Bt_BootsAndRunsScriptedSession(int cpus)
    {
        using var s = LinuxSession.Boot(EngineKind.Bt, cpus);

        Assert.Contains(s.Image.KernelVersion, s.Run("uname -r"));

        string cpuinfo = s.Run("grep -c ^processor /proc/cpuinfo");
        Assert.Contains($"\n{cpus}\r", cpuinfo.Replace("\r\r", "\r"));

        string interrupts = s.Run("cat /proc/interrupts");
        Assert.Contains("CPU0", interrupts);
        if (cpus > 1)
        {
            Assert.Contains("CPU1", interrupts);
        }

        string loop = s.Run("i=0; t=0; while [ $i -lt 500 ]; do t=$((t+i*i)); i=$((i+1)); done; echo sum=$t");
        Assert.Contains($"sum={Enumerable.Range(0, 500).Sum(i => (long)i * i)}", loop);

        // 2000 lines "line N" generated in the guest; the host computes the md5 of the same bytes.
        string md5 = s.Run("i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done | md5sum");
        var expected = new StringBuilder();
        for (int i = 0; i < 2000; i++)
        {
            expected.Append("line ").Append(i).Append('\n');
        }

#pragma warning disable CA5351 // md5sum is what the guest runs; this is a checksum, not security
        string hostMd5 = Convert.ToHexStringLower(MD5.HashData(Encoding.ASCII.GetBytes(expected.ToString())));
#pragma warning restore CA5351
        Assert.Contains(hostMd5, md5);

        s.Send("poweroff -f");
        var result = s.Machine.Vm.WaitForStop(LinuxSession.CommandLimit);
        Assert.True(result.Reason is VmStopReason.HaltedForever or VmStopReason.PowerOff, $"{result.Reason}: {result.Detail}");
        Assert.Equal(0, result.ExitStatus);
    }
}
