using System.Text;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

public sealed class InitScriptTests
{
    private static readonly string[] s_modules =
    [
        "/lib/modules/6.1.0-test/kernel/drivers/virtio/virtio_ring.ko",
        "/lib/modules/6.1.0-test/kernel/drivers/virtio/virtio.ko",
        "/lib/modules/6.1.0-test/kernel/drivers/block/virtio_blk.ko",
    ];

    [Fact]
    public void Generate_Modules_InsmodLinesInGivenOrder()
    {
        string script = InitScript.Generate(s_modules);

        var insmods = script.Split('\n').Where(l => l.StartsWith("rv_insmod ", StringComparison.Ordinal)).ToList();
        Assert.Equal(s_modules.Select(m => $"rv_insmod \"{m}\""), insmods);
    }

    [Fact]
    public void Generate_Always_MountsBeforeInsmodAndPrintsReadyLineBeforeShell()
    {
        string script = InitScript.Generate(s_modules);

        int mountDev = script.IndexOf("mount -t devtmpfs", StringComparison.Ordinal);
        int firstInsmod = script.IndexOf("rv_insmod \"", StringComparison.Ordinal);
        int ready = script.IndexOf($"echo \"{InitScript.ReadyLine}\"", StringComparison.Ordinal);
        int shell = script.IndexOf("setsid cttyhack /bin/sh", StringComparison.Ordinal);
        Assert.StartsWith("#!/bin/sh\n", script, StringComparison.Ordinal);
        Assert.True(mountDev > 0 && mountDev < firstInsmod, "devtmpfs must be mounted before modules load");
        Assert.True(firstInsmod < ready && ready < shell, "ready line comes after module loads and before the shell");
        Assert.Equal("ringvisor: guest ready", InitScript.ReadyLine);
    }

    [Theory]
    [InlineData("rv.ip=*")]
    [InlineData("rv.init=*")]
    [InlineData("rv.bench=*")]
    [InlineData("poweroff -f")]
    [InlineData("rv-bench: loop start")]
    [InlineData("rv-bench: md5 end")]
    public void Generate_Always_HandlesParametersAndBenchmarkMarkers(string fragment)
    {
        Assert.Contains(fragment, InitScript.Generate(s_modules), StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_UnquotablePath_Throws()
    {
        Assert.Throws<ArgumentException>(() => InitScript.Generate(["/lib/$(reboot).ko"]));
    }

    [HostToolFact("sh")]
    public void Generate_Always_IsSyntacticallyValidShell()
    {
        var (rc, _, stderr) = HostTools.Run("sh", ["-n"], Encoding.UTF8.GetBytes(InitScript.Generate(s_modules)));

        Assert.True(rc == 0, stderr);
    }
}
