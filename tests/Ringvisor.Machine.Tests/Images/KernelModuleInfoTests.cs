using System.Buffers.Binary;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

public sealed class KernelModuleInfoTests
{
    [Fact]
    public void Parse_ModuleWithDepends_ReturnsNameAndDependencies()
    {
        var info = KernelModuleInfo.Parse(SyntheticElf.Module("virtio_net", "virtio_ring,virtio,net_failover"), "fallback");

        Assert.Equal("virtio_net", info.Name);
        Assert.Equal(["virtio_ring", "virtio", "net_failover"], info.Depends);
    }

    [Fact]
    public void Parse_EmptyDepends_ReturnsNoDependencies()
    {
        Assert.Empty(KernelModuleInfo.Parse(SyntheticElf.Module("virtio_ring", ""), "x").Depends);
    }

    [Fact]
    public void ReadModinfo_RepeatedKeys_KeepsAllValues()
    {
        var fields = KernelModuleInfo.ReadModinfo(SyntheticElf.WithModinfo("alias=a\0alias=b\0name=m\0"));

        Assert.Equal(["a", "b"], fields["alias"]);
    }

    [Fact]
    public void Parse_NotElf_ThrowsInvalidData()
    {
        Assert.Throws<InvalidDataException>(() => KernelModuleInfo.Parse(new byte[128], "x"));
    }

    [Fact]
    public void Parse_SectionHeadersOutsideFile_ThrowsInvalidData()
    {
        byte[] elf = SyntheticElf.Module("m", "");
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(0x28), ulong.MaxValue - 10);

        Assert.Throws<InvalidDataException>(() => KernelModuleInfo.Parse(elf, "x"));
    }

    [Fact]
    public void Parse_SectionDataOutsideFile_ThrowsInvalidData()
    {
        byte[] elf = SyntheticElf.Module("m", "");
        int shoff = (int)BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(0x28));
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(shoff + 64 + 0x20), 1UL << 40); // .modinfo size

        Assert.Throws<InvalidDataException>(() => KernelModuleInfo.Parse(elf, "x"));
    }

    [Theory]
    [InlineData("kernel/drivers/char/hw_random/virtio-rng.ko", "virtio_rng")]
    [InlineData("kernel/drivers/net/virtio_net.ko.xz", "virtio_net")]
    [InlineData("rng-core.ko.zst", "rng_core")]
    public void NameFromPath_CompressedOrDashed_NormalisedName(string path, string expected)
    {
        Assert.Equal(expected, KernelModuleInfo.NameFromPath(path));
    }
}
