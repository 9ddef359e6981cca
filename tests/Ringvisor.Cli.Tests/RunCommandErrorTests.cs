namespace Ringvisor.Cli.Tests;

/// <summary>Bad input ends with one clear line on stderr and a non-zero status, before any vCPU runs.</summary>
public sealed class RunCommandErrorTests
{
    private static void AssertOneLineError(CliProcess.Result r, string mustContain)
    {
        Assert.NotEqual(0, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("ringvisor: ", lines[0]);
        Assert.Contains(mustContain, lines[0]);
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void Run_MissingKernel_OneLineNamingTheFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"rv-missing-{Guid.NewGuid():N}");
        var r = CliProcess.Run(["run", "--kernel", path, "--engine", "bt"]);
        AssertOneLineError(r, path);
    }

    [Fact]
    public void Run_GarbageKernel_OneLineNamingTheFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"rv-garbage-{Guid.NewGuid():N}");
        File.WriteAllBytes(path, Enumerable.Range(0, 10000).Select(i => (byte)(i * 7919 >> 3)).ToArray());
        try
        {
            var r = CliProcess.Run(["run", "--kernel", path, "--engine", "bt"]);
            AssertOneLineError(r, path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Run_EngineKvmWithoutDevKvm_OneClearLine()
    {
        string kernel = Path.Combine(Path.GetTempPath(), $"rv-k-{Guid.NewGuid():N}");
        File.WriteAllBytes(kernel, new byte[16]);
        try
        {
            var r = CliProcess.Run(["run", "--kernel", kernel, "--engine", "kvm"],
                env: new Dictionary<string, string> { ["RINGVISOR_KVM_DEVICE"] = "/nonexistent/kvm" });
            AssertOneLineError(r, "/nonexistent/kvm");
        }
        finally
        {
            File.Delete(kernel);
        }
    }

    [Theory]
    [InlineData("--memory", "12Q", "memory")]
    [InlineData("--memory", "0", "memory")]
    [InlineData("--cpus", "0", "cpus")]
    [InlineData("--cpus", "1000", "cpus")]
    [InlineData("--engine", "vmware", "vmware")]
    public void Run_BadOption_NonZeroWithMessage(string option, string value, string mentioned)
    {
        var r = CliProcess.Run(["run", "--kernel", "/nonexistent", option, value]);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(mentioned, r.Stderr, StringComparison.OrdinalIgnoreCase);
    }
}
