// Linux's own virtio drivers against Ringvisor's devices (bt engine): a disk that survives the VMM being killed,
// and two VMs on one virtual switch (LinuxScenarios; KvmLinuxTests runs the same under kvm).
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Integration;

public sealed class VirtioLinuxTests
{
    [Fact]
    public void Disk_WriteSyncKillRestart_FileIntact() => LinuxScenarios.DiskWriteSyncKillRestart(EngineKind.Bt);

    [Fact]
    public void Disk_WritableImageAlreadyInUse_ClearError()
    {
        string img = Path.Combine(Path.GetTempPath(), $"rv-lock-{Guid.NewGuid():N}.img");
        File.WriteAllBytes(img, new byte[1 << 20]);
        var image = DefaultGuestImage.EnsureBuilt(null);
        try
        {
            MachineConfig Cfg() => new()
            {
                KernelPath = image.Kernel,
                InitrdPaths = [image.Initrd],
                MemoryBytes = 256UL << 20,
                Engine = EngineKind.Bt,
                Disks = [new DiskConfig(img, false)],
            };
            using var first = MachineBuilder.Build(Cfg(), _ => { });
            var e = Assert.ThrowsAny<Exception>(() => MachineBuilder.Build(Cfg(), _ => { }).Dispose());
            Assert.Contains(img, e.Message);
        }
        finally
        {
            File.Delete(img);
        }
    }

    [Fact]
    public void TwoVmsOnOneSwitch_PingAndTransferWithMatchingChecksum() => LinuxScenarios.TwoVmsOnOneSwitch(EngineKind.Bt);
}
