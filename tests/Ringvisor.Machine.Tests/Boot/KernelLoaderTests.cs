// Format recognition and file-level errors of KernelLoader, and a real distribution kernel where one is installed.
using System.Buffers.Binary;
using Ringvisor.Core.Memory;
using Ringvisor.Machine.Boot;

namespace Ringvisor.Machine.Tests.Boot;

public sealed class KernelLoaderTests : IDisposable
{
    private readonly TempFiles _files = new();
    private readonly GuestMemory _memory = GuestMemory.Create(256UL << 20);

    public void Dispose()
    {
        _memory.Dispose();
        _files.Dispose();
    }

    private BootImageException Fails(string path, int vcpus = 1) =>
        Assert.Throws<BootImageException>(() => KernelLoader.Load(_memory, new KernelLoadOptions(path, [], "", vcpus)));

    [Fact]
    public void Load_MissingKernel_ThrowsNamingFile()
    {
        string path = Path.Combine(_files.Directory, "vmlinuz-missing");

        Assert.Equal($"{path}: no such file", Fails(path).Message);
    }

    [Fact]
    public void Load_KernelIsDirectory_ThrowsNamingFile()
    {
        var e = Fails(_files.Directory);

        Assert.Equal($"{_files.Directory}: is a directory, not a file", e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(63)]
    public void Load_TinyFile_ThrowsTooShort(int length)
    {
        string path = _files.Write("tiny", new byte[length]);

        var e = Fails(path);

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("too short", e.Message);
    }

    [Fact]
    public void Load_UnknownFormat_ThrowsNamingFile()
    {
        string path = _files.WritePattern("garbage", 100_000, seed: 1);

        var e = Fails(path);

        Assert.Equal($"{path}: not a bzImage, ELF or multiboot image", e.Message);
    }

    [Fact]
    public void Load_ImageLargerThanRam_Throws()
    {
        using var small = GuestMemory.Create(2UL << 20);
        string path = _files.WritePattern("big", 3 << 20, seed: 0);

        var e = Assert.Throws<BootImageException>(() => KernelLoader.Load(small, new KernelLoadOptions(path, [], "", 1)));

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("larger than guest RAM", e.Message);
    }

    [Fact]
    public void Load_RamBelowOneMiB_Throws()
    {
        using var small = GuestMemory.Create(512UL << 10);
        string path = _files.Write("mb", MultibootImages.Aout());

        var e = Assert.Throws<BootImageException>(() => KernelLoader.Load(small, new KernelLoadOptions(path, [], "", 1)));

        Assert.Contains("at least 1 MiB", e.Message);
    }

    [Fact]
    public void Load_CommandLineWithNul_Throws()
    {
        string path = _files.Write("bzImage", new FakeBzImage().Build());

        var e = Assert.Throws<BootImageException>(() => KernelLoader.Load(_memory, new KernelLoadOptions(path, [], "a\0b", 1)));

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("NUL", e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(MpTable.MaxVcpus + 1)]
    public void Load_BadVcpuCount_ThrowsArgumentOutOfRange(int vcpus)
    {
        string path = _files.Write("bzImage", new FakeBzImage().Build());

        Assert.Throws<ArgumentOutOfRangeException>(() => KernelLoader.Load(_memory, new KernelLoadOptions(path, [], "", vcpus)));
    }

    [Fact]
    public void Load_VcpuCount_IsDescribedInMpTable()
    {
        string path = _files.Write("bzImage", new FakeBzImage().Build());

        var result = KernelLoader.Load(_memory, new KernelLoadOptions(path, [], "", 3));

        uint config = _memory.U32(result.MpTableAddress + 4);
        ushort entries = _memory.U16(config + 34);
        Assert.Equal(3 + 1 + 1 + 15 + 2, entries);
    }

    [Fact]
    public void Load_ElfWithMultibootHeader_PrefersMultibootOverElf64()
    {
        // An ELF64 whose first segment starts with a multiboot header boots as multiboot (as GRUB would).
        var text = new byte[0x100];
        MultibootImages.Header(0x3).CopyTo(text, 0);
        var image = new ElfBuilder(is64: true) { Entry = 0x100010 }.Load(0x100000, text).Build();
        string path = _files.Write("mb64", image);

        var result = KernelLoader.Load(_memory, new KernelLoadOptions(path, [], "", 1));

        Assert.Equal(BootFormat.MultibootElf, result.Format);
    }

    [HostKernelFact]
    public void Load_HostKernel_ParsesRealBzImageHeader()
    {
        string path = HostKernelFactAttribute.Path!;
        byte[] file = File.ReadAllBytes(path);

        var result = KernelLoader.Load(_memory, new KernelLoadOptions(path, [], "console=ttyS0", 1));

        Assert.Equal(BootFormat.BzImage, result.Format);
        Assert.True(BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(0x206)) >= 0x020C);
        Assert.Equal(result.KernelStart + 0x200, result.BootCpu.Registers.Rip);
        int headerEnd = Math.Min(0x202 + file[0x201], 0x290);
        Assert.Equal(file[0x202..0x210], _memory.Bytes(0x7000 + 0x202, 0x0E));
        Assert.Equal(file[0x230..0x238], _memory.Bytes(0x7000 + 0x230, 8));
        Assert.Equal(file[0x258..headerEnd], _memory.Bytes(0x7000 + 0x258, headerEnd - 0x258));
        int setupSects = file[0x1F1] == 0 ? 4 : file[0x1F1];
        int offset = (setupSects + 1) * 512;
        Assert.Equal(file[offset..(offset + 4096)], _memory.Bytes(result.KernelStart, 4096));
        Assert.Equal("console=ttyS0", _memory.CString(_memory.U32(0x7000 + 0x228)));
    }

    [HostVmlinuxFact]
    public void Load_HostVmlinux_BootsThroughPvhWithSegmentsInPlace()
    {
        string path = HostVmlinuxFactAttribute.Path!;
        byte[] file = File.ReadAllBytes(path);

        var result = KernelLoader.Load(_memory, new KernelLoadOptions(path, [], "console=ttyS0", 2));

        // Debian kernels carry XEN_ELFNOTE_PHYS32_ENTRY (CONFIG_PVH).
        Assert.Equal(BootFormat.Pvh, result.Format);
        Assert.Equal(result.EntryPoint, result.BootCpu.Registers.Rip);
        Assert.InRange(result.EntryPoint, result.KernelStart, result.KernelEnd - 1);
        Assert.Equal(0x336EC578U, _memory.U32(result.BootCpu.Registers.Rbx));
        Assert.Equal(result.AcpiRsdpAddress, _memory.U64(result.BootInfoAddress + 0x20));
        Assert.Equal("console=ttyS0", _memory.CString(_memory.U64(result.BootInfoAddress + 0x18)));

        ulong phoff = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(0x20));
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(0x38));
        int loads = 0;
        for (int i = 0; i < phnum; i++)
        {
            var ph = file.AsSpan((int)phoff + (i * 56), 56);
            if (BinaryPrimitives.ReadUInt32LittleEndian(ph) != 1)
            {
                continue;
            }

            int offset = (int)BinaryPrimitives.ReadUInt64LittleEndian(ph[8..]);
            ulong paddr = BinaryPrimitives.ReadUInt64LittleEndian(ph[24..]);
            int filesz = (int)BinaryPrimitives.ReadUInt64LittleEndian(ph[32..]);
            int n = Math.Min(filesz, 4096);
            Assert.Equal(file[offset..(offset + n)], _memory.Bytes(paddr, n));
            loads++;
        }

        Assert.True(loads > 0);
    }
}
