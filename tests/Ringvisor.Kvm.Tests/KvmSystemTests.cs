using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;
using Ringvisor.Kvm.Native;
using Ringvisor.Kvm.Tests.Support;
using Ringvisor.TestSupport;

namespace Ringvisor.Kvm.Tests;

public class KvmSystemTests
{
    [Fact]
    public void Open_MissingDevicePath_ThrowsUnavailableNamingThePath()
    {
        string path = Path.Combine(Path.GetTempPath(), $"ringvisor-no-kvm-{Guid.NewGuid():N}");

        var e = Assert.Throws<KvmUnavailableException>(() => KvmSystem.Open(path));

        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", e.Message, StringComparison.Ordinal);
        Assert.Equal(LibC.ENoEnt, e.Errno);
    }

    [Fact]
    public void Open_RegularFile_ThrowsNotAKvmDevice()
    {
        string path = Path.GetTempFileName();
        try
        {
            var e = Assert.Throws<KvmUnavailableException>(() => KvmSystem.Open(path));

            Assert.Contains("is not a KVM device", e.Message, StringComparison.Ordinal);
            Assert.Contains("KVM_GET_API_VERSION", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void KvmEngine_MissingDevicePath_ThrowsUnavailable()
    {
        using var memory = GuestMemory.Create(1 << 20);
        var context = new EngineContext
        {
            Memory = memory,
            Pio = new IoBus("pio", 0x1_0000),
            Mmio = new IoBus("mmio", 1UL << 52),
            Control = new TestVmControl(),
            VcpuCount = 1,
        };

        var e = Assert.Throws<KvmUnavailableException>(() => new KvmEngine(context, "/nonexistent/ringvisor-kvm"));

        Assert.Contains("/nonexistent/ringvisor-kvm does not exist", e.Message, StringComparison.Ordinal);
    }

    [KvmFact]
    public void Open_HostDevice_PassesVersionAndCapabilityChecks()
    {
        using var kvm = KvmSystem.Open();

        Assert.True(kvm.VcpuMmapSize >= KvmRun.Size);
        foreach (var (cap, _) in KvmSystem.RequiredCapabilities)
        {
            Assert.True(kvm.CheckExtension(cap) > 0, $"capability {cap}");
        }
    }

    [KvmFact]
    public void GetSupportedCpuid_HostDevice_IncludesBasicLeaves()
    {
        using var kvm = KvmSystem.Open();

        var entries = kvm.GetSupportedCpuid();

        Assert.Contains(entries, e => e.Function == 0);
        Assert.Contains(entries, e => e.Function == 1);
    }
}
