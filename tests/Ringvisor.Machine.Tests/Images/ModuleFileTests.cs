using System.IO.Compression;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

public sealed class ModuleFileTests
{
    [Fact]
    public void ReadAllBytes_GzipModule_ReturnsElf()
    {
        byte[] elf = SyntheticElf.Module("m", "");
        string dir = Directory.CreateTempSubdirectory("rv-ko-").FullName;
        try
        {
            string path = Path.Combine(dir, "m.ko.gz");
            using (var f = File.Create(path))
            using (var gz = new GZipStream(f, CompressionLevel.Fastest))
            {
                gz.Write(elf);
            }

            Assert.Equal(elf, ModuleFile.ReadAllBytes(path));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [HostToolFact("xz", "zstd")]
    public void FromModuleDirectory_XzAndZstdModules_DecompressedToReadDepends()
    {
        string dir = Directory.CreateTempSubdirectory("rv-ko-").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(dir, "virtio_ring.ko"), SyntheticElf.Module("virtio_ring", ""));
            File.WriteAllBytes(Path.Combine(dir, "virtio.ko"), SyntheticElf.Module("virtio", "virtio_ring"));
            File.WriteAllBytes(Path.Combine(dir, "virtio-rng.ko"), SyntheticElf.Module("virtio_rng", "virtio,virtio_ring"));
            Assert.Equal(0, HostTools.Run("xz", ["--check=crc32", Path.Combine(dir, "virtio.ko")]).ExitCode);
            Assert.Equal(0, HostTools.Run("zstd", ["-q", "--rm", Path.Combine(dir, "virtio-rng.ko")]).ExitCode);

            var plan = KernelModuleGraph.FromModuleDirectory(dir).Resolve(["virtio_rng"]);

            Assert.Equal(["virtio_ring", "virtio", "virtio_rng"], plan.LoadOrder.Select(m => m.Name));
            Assert.Equal(["virtio_ring.ko", "virtio.ko.xz", "virtio-rng.ko.zst"], plan.LoadOrder.Select(m => m.RelativePath));
            Assert.Equal(SyntheticElf.Module("virtio", "virtio_ring"), ModuleFile.ReadAllBytes(Path.Combine(dir, "virtio.ko.xz")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("kernel/a/virtio_net.ko.xz", "kernel/a/virtio_net.ko")]
    [InlineData("kernel/a/virtio_net.ko.zst", "kernel/a/virtio_net.ko")]
    [InlineData("kernel/a/virtio_net.ko", "kernel/a/virtio_net.ko")]
    public void PlainName_CompressedSuffix_Stripped(string path, string expected)
    {
        Assert.Equal(expected, ModuleFile.PlainName(path));
    }
}
