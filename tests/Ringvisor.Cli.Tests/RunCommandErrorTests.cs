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
    [InlineData("--bt-translate", "maybe", "maybe")]
    [InlineData("--virtio-console", "tcp=1234", "--virtio-console")]
    [InlineData("--virtio-console", "unix=", "missing path")]
    public void Run_BadOption_NonZeroWithMessage(string option, string value, string mentioned)
    {
        var r = CliProcess.Run(["run", "--kernel", "/nonexistent", option, value]);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(mentioned, r.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Run_VirtioConsoleSocketPathIsADirectory_OneLineNamingIt()
    {
        string kernel = Path.Combine(Path.GetTempPath(), $"rv-k-{Guid.NewGuid():N}");
        File.WriteAllBytes(kernel, TestKernelBytes());
        string dir = Path.Combine(Path.GetTempPath(), $"rv-dir-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            var r = CliProcess.Run(["run", "--kernel", kernel, "--engine", "bt", "--virtio-console", $"unix={dir}"]);
            AssertOneLineError(r, dir);
        }
        finally
        {
            File.Delete(kernel);
            Directory.Delete(dir);
        }
    }

    /// <summary>A multiboot v1 header (magic, flags 0, checksum) followed by HLT: enough for the loader to accept.</summary>
    private static byte[] TestKernelBytes()
    {
        var k = new byte[8192];
        BitConverter.GetBytes(0x1BADB002u).CopyTo(k, 0);
        BitConverter.GetBytes(0x0001_0000u).CopyTo(k, 4); // a.out kludge: addresses follow
        BitConverter.GetBytes(unchecked(0u - 0x1BADB002u - 0x0001_0000u)).CopyTo(k, 8);
        BitConverter.GetBytes(0x10_0000u).CopyTo(k, 12);   // header_addr
        BitConverter.GetBytes(0x10_0000u).CopyTo(k, 16);   // load_addr
        BitConverter.GetBytes(0u).CopyTo(k, 20);           // load_end_addr: whole file
        BitConverter.GetBytes(0u).CopyTo(k, 24);           // bss_end_addr: none
        BitConverter.GetBytes(0x10_0020u).CopyTo(k, 28);   // entry_addr
        k[32] = 0xF4;
        return k;
    }
}
