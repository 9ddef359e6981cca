using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

public sealed class KernelModuleGraphTests
{
    // Shaped like depmod's output for Debian 12's cloud kernel: each line lists all (transitive) dependencies.
    private const string ModulesDep = """
        kernel/drivers/virtio/virtio_ring.ko:
        kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
        kernel/drivers/virtio/virtio_pci_modern_dev.ko:
        kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
        kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
        kernel/net/core/failover.ko:
        kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
        kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
        kernel/drivers/char/hw_random/virtio-rng.ko.xz: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
        kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
        """;

    private const string ModulesBuiltin = """
        kernel/fs/ext4/ext4.ko
        kernel/fs/jbd2/jbd2.ko
        kernel/drivers/char/hw_random/rng-core.ko
        """;

    private static KernelModuleGraph Graph() => KernelModuleGraph.FromModulesDep(ModulesDep, ModulesBuiltin);

    private static void AssertDependenciesFirst(ModuleLoadPlan plan)
    {
        var position = plan.LoadOrder.Select((m, i) => (m.Name, i)).ToDictionary(x => x.Name, x => x.i);
        foreach (var m in plan.LoadOrder)
        {
            foreach (string dep in m.Depends)
            {
                Assert.True(position[dep] < position[m.Name], $"{dep} must load before {m.Name}");
            }
        }
    }

    [Fact]
    public void Resolve_VirtioNet_LoadsDependenciesFirst()
    {
        var plan = Graph().Resolve(["virtio_net"]);

        Assert.Equal(["failover", "net_failover", "virtio_ring", "virtio", "virtio_net"], plan.LoadOrder.Select(m => m.Name));
        AssertDependenciesFirst(plan);
        Assert.Empty(plan.Missing);
    }

    [Fact]
    public void Resolve_SeveralRoots_EachModuleOnceInDependencyOrder()
    {
        var plan = Graph().Resolve(["virtio_pci", "virtio_blk", "virtio_net", "virtio-rng"]);

        var names = plan.LoadOrder.Select(m => m.Name).ToList();
        Assert.Equal(names.Distinct().Count(), names.Count);
        Assert.Equal(
            ["virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_ring", "virtio", "virtio_pci", "virtio_blk", "failover", "net_failover", "virtio_net", "virtio_rng"],
            names);
        AssertDependenciesFirst(plan);
    }

    [Fact]
    public void Resolve_DashedFileName_MatchesUnderscoreNameAndKeepsPath()
    {
        var rng = Graph().Resolve(["virtio_rng"]).LoadOrder.Single(m => m.Name == "virtio_rng");

        Assert.Equal("kernel/drivers/char/hw_random/virtio-rng.ko.xz", rng.RelativePath);
    }

    [Fact]
    public void Resolve_BuiltInAndUnknown_ReportedSeparately()
    {
        var plan = Graph().Resolve(["ext4", "rng-core", "virtio_gpu"]);

        Assert.Empty(plan.LoadOrder);
        Assert.Equal(["ext4", "rng_core"], plan.BuiltIn);
        Assert.Equal(["virtio_gpu"], plan.Missing);
    }

    [Fact]
    public void Resolve_DependencyNeitherModuleNorBuiltIn_ReportedAsMissing()
    {
        var graph = KernelModuleGraph.FromModulesDep("kernel/a.ko: kernel/gone.ko\n");

        var plan = graph.Resolve(["a"]);

        Assert.Equal(["a"], plan.LoadOrder.Select(m => m.Name));
        Assert.Equal(["gone (needed by a)"], plan.Missing);
    }

    [Fact]
    public void Resolve_Cycle_ThrowsInvalidData()
    {
        var graph = KernelModuleGraph.FromModulesDep("kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/c.ko\nkernel/c.ko: kernel/a.ko\n");

        var e = Assert.Throws<InvalidDataException>(() => graph.Resolve(["a"]));
        Assert.Contains("a -> b -> c -> a", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromModulesDep_LineWithoutColon_ThrowsInvalidData()
    {
        Assert.Throws<InvalidDataException>(() => KernelModuleGraph.FromModulesDep("kernel/a.ko kernel/b.ko\n"));
    }

    [Fact]
    public void FromModuleDirectory_NoModulesDep_ReadsDependsFromModinfo()
    {
        string dir = Directory.CreateTempSubdirectory("rv-mods-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(dir, "kernel/drivers/virtio"));
            File.WriteAllBytes(Path.Combine(dir, "kernel/drivers/virtio/virtio_ring.ko"), SyntheticElf.Module("virtio_ring", ""));
            File.WriteAllBytes(Path.Combine(dir, "kernel/drivers/virtio/virtio.ko"), SyntheticElf.Module("virtio", "virtio_ring"));
            File.WriteAllBytes(Path.Combine(dir, "kernel/drivers/virtio/virtio_blk.ko"), SyntheticElf.Module("virtio_blk", "virtio,virtio_ring"));
            File.WriteAllText(Path.Combine(dir, "modules.builtin"), "kernel/fs/ext4/ext4.ko\n");

            var plan = KernelModuleGraph.FromModuleDirectory(dir).Resolve(["virtio_blk", "ext4"]);

            Assert.Equal(["virtio_ring", "virtio", "virtio_blk"], plan.LoadOrder.Select(m => m.Name));
            Assert.Equal(["ext4"], plan.BuiltIn);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
