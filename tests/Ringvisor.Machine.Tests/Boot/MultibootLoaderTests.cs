// The multiboot v1 path of KernelLoader: ELF32 and a.out-kludge images, the protected-mode entry state, the
// information structure (memory, cmdline, modules, mmap, loader name) and header errors.
using System.Buffers.Binary;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;
using Ringvisor.Machine.Boot;

namespace Ringvisor.Machine.Tests.Boot;

public sealed class MultibootLoaderTests : IDisposable
{
    private const ulong Ram = 64UL << 20;

    private readonly TempFiles _files = new();
    private readonly GuestMemory _memory = GuestMemory.Create(Ram);

    public void Dispose()
    {
        _memory.Dispose();
        _files.Dispose();
    }

    private BootResult Boot(byte[] image, string cmdline = "", params string[] modules) =>
        KernelLoader.Load(_memory, new KernelLoadOptions(_files.Write("kernel.mb", image), modules, cmdline, 1));

    private BootImageException BootFails(byte[] image, out string path, params string[] modules)
    {
        path = _files.Write("kernel-bad.mb", image);
        string p = path;
        return Assert.Throws<BootImageException>(() => KernelLoader.Load(_memory, new KernelLoadOptions(p, modules, "", 1)));
    }

    [Fact]
    public void Load_Elf32Multiboot_EntersProtectedModeWithMagicAndInfo()
    {
        var result = Boot(MultibootImages.Elf().Build(), "hello world");

        Assert.Equal(BootFormat.MultibootElf, result.Format);
        var s = result.BootCpu;
        Assert.Equal(0x100010UL, s.Registers.Rip);
        Assert.Equal(0x2BADB002UL, s.Registers.Rax);
        Assert.Equal(result.BootInfoAddress, s.Registers.Rbx);
        Assert.Equal(SystemRegisters.Cr0Pe, s.System.Cr0 & SystemRegisters.Cr0Pe);
        Assert.Equal(0UL, s.System.Cr0 & SystemRegisters.Cr0Pg);
        Assert.Equal(0UL, s.System.Efer);
        Assert.Equal(2UL, s.Registers.Rflags);
        foreach (var seg in new[] { s.System.Cs, s.System.Ds, s.System.Es, s.System.Ss, s.System.Fs, s.System.Gs })
        {
            Assert.Equal(0UL, seg.Base);
            Assert.Equal(0xFFFF_FFFFu, seg.Limit);
            Assert.True(seg.DefaultBig);
        }

        Assert.Equal(0x3, s.System.Cs.Type & 0x3); // readable code, accessed
        Assert.Equal(0x8, s.System.Cs.Type & 0x8); // code
        Assert.Equal(0, s.System.Ds.Type & 0x8); // data

        var stub = GuestCode.ProtectedModeStub(0x100010);
        Assert.Equal(stub, _memory.Bytes(0x100010, stub.Length));
        Assert.All(_memory.Bytes(0x101000, 0x2000), b => Assert.Equal(0, b)); // bss
        Assert.Equal(0x103000UL, result.KernelEnd);
    }

    [Fact]
    public void Load_Multiboot_InfoStructureDescribesMemoryCmdlineMmapAndLoader()
    {
        string kernel = _files.Write("kernel.mb", MultibootImages.Elf().Build());
        var result = KernelLoader.Load(_memory, new KernelLoadOptions(kernel, [], "console=com1 debug", 1));
        ulong info = result.BootInfoAddress;

        uint flags = _memory.U32(info);
        Assert.Equal(0x24DU, flags & 0x24D); // mem (0), cmdline (2), mods (3), mmap (6), boot_loader_name (9)
        Assert.Equal(0U, flags & (1 << 11)); // no VBE info
        Assert.Equal(639U, _memory.U32(info + 4)); // mem_lower
        Assert.Equal((uint)((Ram - 0x100000) / 1024), _memory.U32(info + 8)); // mem_upper
        Assert.Equal($"{kernel} console=com1 debug", _memory.CString(_memory.U32(info + 16))); // file name first, as GRUB/QEMU
        Assert.Equal("Ringvisor", _memory.CString(_memory.U32(info + 64)));

        uint mmapLength = _memory.U32(info + 44);
        uint mmapAddr = _memory.U32(info + 48);
        Assert.Equal((uint)(result.MemoryMap.Count * 24), mmapLength);
        ulong at = mmapAddr;
        foreach (var expected in result.MemoryMap)
        {
            Assert.Equal(20U, _memory.U32(at)); // size field excludes itself
            Assert.Equal(expected.Address, _memory.U64(at + 4));
            Assert.Equal(expected.Size, _memory.U64(at + 12));
            Assert.Equal((uint)expected.Type, _memory.U32(at + 20));
            at += _memory.U32(at) + 4;
        }

        Assert.Equal(mmapAddr + mmapLength, at);
    }

    [Fact]
    public void Load_MultibootWithModules_PlacesPageAlignedModulesAboveKernel()
    {
        string first = _files.WritePattern("mod1.bin", 5000, seed: 21);
        string second = _files.WritePattern("mod2.bin", 123, seed: 22);

        var result = Boot(MultibootImages.Elf().Build(), "", first, second);
        ulong info = result.BootInfoAddress;

        Assert.Equal(2U, _memory.U32(info + 20));
        uint mods = _memory.U32(info + 24);
        uint previousEnd = (uint)result.KernelEnd;
        foreach (var (path, length, seed, index) in new[] { (first, 5000u, 21, 0u), (second, 123u, 22, 1u) })
        {
            ulong entry = mods + (index * 16);
            uint start = _memory.U32(entry);
            uint end = _memory.U32(entry + 4);
            Assert.Equal(0U, start % 4096);
            Assert.True(start >= previousEnd);
            Assert.Equal(length, end - start);
            Assert.Equal(path, _memory.CString(_memory.U32(entry + 8)));
            Assert.Equal(TempFiles.Pattern(length - 1, seed), _memory.U8(start + length - 1));
            Assert.Equal(new BootModule(path, start, length), result.Modules[(int)index]);
            previousEnd = end;
        }
    }

    [Fact]
    public void Load_AoutKludge_LoadsFileAtLoadAddrAndZeroesBss()
    {
        _memory.Fill(MultibootImages.AoutLoad + MultibootImages.AoutFileLength, 0x100, 0xEE);
        byte[] image = MultibootImages.Aout();

        var result = Boot(image);

        Assert.Equal(BootFormat.MultibootAout, result.Format);
        Assert.Equal((ulong)MultibootImages.AoutEntry, result.BootCpu.Registers.Rip);
        Assert.Equal(0x2BADB002UL, result.BootCpu.Registers.Rax);
        Assert.Equal(image, _memory.Bytes(MultibootImages.AoutLoad, image.Length));
        Assert.All(_memory.Bytes(MultibootImages.AoutLoad + MultibootImages.AoutFileLength, (int)(MultibootImages.AoutBssEnd - MultibootImages.AoutLoad) - MultibootImages.AoutFileLength),
            b => Assert.Equal(0, b));
        Assert.Equal((ulong)MultibootImages.AoutBssEnd, result.KernelEnd);
    }

    [Fact]
    public void Load_AoutKludgeWithLoadEndZero_LoadsWholeFile()
    {
        byte[] image = MultibootImages.Aout(loadEndAddr: 0, bssEnd: 0);

        var result = Boot(image);

        Assert.Equal(image, _memory.Bytes(MultibootImages.AoutLoad, image.Length));
        Assert.Equal(MultibootImages.AoutLoad + (ulong)image.Length, result.KernelEnd);
    }

    [Fact]
    public void Load_AoutKludgeWithHeaderLaterThanLoadStart_SkipsLeadingFileBytes()
    {
        // header_addr - load_addr = 0x20 while the header is at file offset 0x40: loading starts at file offset 0x20.
        byte[] image = MultibootImages.Aout(headerAddr: MultibootImages.AoutLoad + 0x20, loadEndAddr: 0, bssEnd: 0, entry: MultibootImages.AoutLoad + 0x60);

        Boot(image);

        Assert.Equal(image[0x20..], _memory.Bytes(MultibootImages.AoutLoad, image.Length - 0x20));
    }

    [Fact]
    public void Load_VideoModeRequired_Throws()
    {
        var e = BootFails(MultibootImages.Elf(flags: 0x7).Build(), out string path);

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("video", e.Message);
    }

    [Fact]
    public void Load_UnknownRequiredFlag_Throws()
    {
        var e = BootFails(MultibootImages.Elf(flags: 0x3 | (1 << 5)).Build(), out string path);

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("0x20", e.Message);
    }

    [Fact]
    public void Load_UnknownOptionalFlag_IsIgnored()
    {
        Assert.Equal(BootFormat.MultibootElf, Boot(MultibootImages.Elf(flags: 0x3 | (1u << 20)).Build()).Format);
    }

    [Fact]
    public void Load_BadChecksumOnNonElf_Throws()
    {
        byte[] image = new byte[4096];
        MultibootImages.Header(0x10002, goodChecksum: false).CopyTo(image, 0x40);

        var e = BootFails(image, out string path);

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("checksum", e.Message);
    }

    [Fact]
    public void Load_HeaderBeyondFirst8KiB_IsNotFound()
    {
        byte[] image = new byte[0x3000];
        MultibootImages.Header(0x10002, 0x102000, 0x100000, 0, 0, 0x102000).CopyTo(image, 0x2000);

        var e = BootFails(image, out string path);

        Assert.Contains("not a bzImage, ELF or multiboot image", e.Message);
    }

    [Fact]
    public void Load_MisalignedHeader_IsNotFound()
    {
        byte[] image = new byte[0x1000];
        MultibootImages.Header(0x10002, 0x100042, 0x100000, 0, 0, 0x100100).CopyTo(image, 0x42);

        var e = BootFails(image, out _);

        Assert.Contains("not a bzImage, ELF or multiboot image", e.Message);
    }

    [Fact]
    public void Load_AoutLoadEndPastFile_Throws()
    {
        var e = BootFails(MultibootImages.Aout(loadEndAddr: MultibootImages.AoutLoad + 0x10000), out string path);

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("load_end_addr", e.Message);
    }

    [Fact]
    public void Load_AoutLoadAddrAboveHeaderAddr_Throws()
    {
        var e = BootFails(MultibootImages.Aout(loadAddr: MultibootImages.AoutLoad + 0x100), out _);

        Assert.Contains("load_addr", e.Message);
    }

    [Fact]
    public void Load_AoutHeaderClaimsMoreLeadingBytesThanFileHas_Throws()
    {
        var e = BootFails(MultibootImages.Aout(loadAddr: MultibootImages.AoutLoad - 0x1000), out _);

        Assert.Contains("before the beginning of the file", e.Message);
    }

    [Fact]
    public void Load_AoutBssEndBelowLoadEnd_Throws()
    {
        var e = BootFails(MultibootImages.Aout(bssEnd: MultibootImages.AoutLoad + 0x100), out _);

        Assert.Contains("bss_end_addr", e.Message);
    }

    [Fact]
    public void Load_AoutEntryOutsideImage_Throws()
    {
        var e = BootFails(MultibootImages.Aout(entry: 0x50_0000), out _);

        Assert.Contains("entry_addr", e.Message);
    }

    [Fact]
    public void Load_AoutImagePastRam_Throws()
    {
        const uint Load = (uint)Ram - 0x1000;
        var e = BootFails(MultibootImages.Aout(loadAddr: Load, headerAddr: Load + 0x40, entry: Load + 0x80, loadEndAddr: 0, bssEnd: 0), out string path);

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("outside guest RAM", e.Message);
    }

    [Fact]
    public void Load_AoutHeaderCutOffByEndOfFile_Throws()
    {
        byte[] image = MultibootImages.Aout()[..(int)(MultibootImages.AoutHeaderOffset + 20)];

        var e = BootFails(image, out _);

        Assert.Contains("cut off", e.Message);
    }

    [Fact]
    public void Load_NonElfWithoutAddressFields_Throws()
    {
        byte[] image = new byte[0x1000];
        MultibootImages.Header(0x3).CopyTo(image, 0x40);

        var e = BootFails(image, out _);

        Assert.Contains("flag 16", e.Message);
    }

    [Fact]
    public void Load_ModuleTooBigForRam_ThrowsNamingModule()
    {
        string module = Path.Combine(_files.Directory, "huge.mod");
        using (var f = File.Create(module))
        {
            f.SetLength(80L << 20);
        }

        var e = BootFails(MultibootImages.Elf().Build(), out _, module);

        Assert.StartsWith(module + ": ", e.Message);
        Assert.Contains("does not fit", e.Message);
    }

    [Fact]
    public void Load_MissingModule_ThrowsNamingModule()
    {
        string module = Path.Combine(_files.Directory, "absent.mod");

        var e = BootFails(MultibootImages.Elf().Build(), out _, module);

        Assert.Equal($"{module}: no such file", e.Message);
    }

    [Fact]
    public void Load_ElfSegmentOverlappingInfo_Throws()
    {
        var text = new byte[0x200];
        MultibootImages.Header(0x3).CopyTo(text, 0);
        var image = new ElfBuilder(is64: false) { Entry = 0x6000 }.Load(0x6000, text).Build();

        var e = BootFails(image, out string path);

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("overlaps the multiboot information", e.Message);
    }

    [Fact]
    public void FindHeader_ValidHeaderAfterBadOne_FindsValid()
    {
        byte[] image = new byte[0x200];
        MultibootImages.Header(0x3, goodChecksum: false).CopyTo(image, 0x10);
        MultibootImages.Header(0x3).CopyTo(image, 0x40);

        Assert.Equal(0x40, MultibootLoader.FindHeader(image, out int bad));
        Assert.Equal(0x10, bad);
        Assert.Equal(MultibootImages.Magic, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(0x40)));
    }
}
