// The bzImage path of KernelLoader: 64-bit boot protocol state, zero page fields at the offsets zero-page.rst gives,
// kernel and initrd placement, and every malformed-header error.
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;
using Ringvisor.Machine.Boot;

namespace Ringvisor.Machine.Tests.Boot;

public sealed class BzImageLoaderTests : IDisposable
{
    private const ulong Ram = 256UL << 20;
    private const ulong ZeroPage = 0x7000;

    private readonly TempFiles _files = new();
    private readonly GuestMemory _memory = GuestMemory.Create(Ram);

    public void Dispose()
    {
        _memory.Dispose();
        _files.Dispose();
    }

    private BootResult Load(FakeBzImage image, string cmdline = "console=ttyS0", params string[] initrds) =>
        KernelLoader.Load(_memory, new KernelLoadOptions(_files.Write("bzImage", image.Build()), initrds, cmdline, 1));

    [Fact]
    public void Load_RelocatableKernel_LoadsAtPrefAddressAndEntersLongModeAt0x200()
    {
        var image = new FakeBzImage();
        var result = Load(image);

        Assert.Equal(BootFormat.BzImage, result.Format);
        Assert.Equal(0x100_0000UL, result.KernelStart);
        Assert.Equal(0x100_0200UL, result.EntryPoint);
        var s = result.BootCpu;
        Assert.Equal(0x100_0200UL, s.Registers.Rip);
        Assert.Equal(ZeroPage, s.Registers.Rsi);
        Assert.Equal(2UL, s.Registers.Rflags);
        Assert.Equal(SystemRegisters.Cr0Pe | SystemRegisters.Cr0Pg, s.System.Cr0 & (SystemRegisters.Cr0Pe | SystemRegisters.Cr0Pg));
        Assert.Equal(SystemRegisters.Cr4Pae, s.System.Cr4 & SystemRegisters.Cr4Pae);
        Assert.Equal(SystemRegisters.EferLme | SystemRegisters.EferLma, s.System.Efer);

        // The payload, entry stub included, is at the load address byte for byte.
        byte[] payload = FakeBzImage.DefaultPayload(0x100_0000);
        Assert.Equal(payload, _memory.Bytes(0x100_0000, payload.Length));
        Assert.Equal(GuestCode.LongModeStub(0x100_0200), _memory.Bytes(s.Registers.Rip, GuestCode.LongModeStub(0x100_0200).Length));
    }

    [Fact]
    public void Load_NonRelocatableKernel_LoadsAt1MiB()
    {
        var image = new FakeBzImage { Relocatable = 0, Payload = FakeBzImage.DefaultPayload(0x100000) };
        var result = Load(image);

        Assert.Equal(0x100000UL, result.KernelStart);
        Assert.Equal(0x100200UL, result.BootCpu.Registers.Rip);
        Assert.Equal(0x100000U, _memory.U32(ZeroPage + 0x214)); // code32_start
    }

    [Fact]
    public void Load_PrefAddressBeyondRam_FallsBackTo1MiB()
    {
        var image = new FakeBzImage { PrefAddress = 0x2000_0000 };
        var result = Load(image);

        Assert.Equal(0x100000UL, result.KernelStart);
    }

    [Fact]
    public void Load_Always_SegmentsAreBootCsAndBootDs()
    {
        var s = Load(new FakeBzImage()).BootCpu.System;

        Assert.Equal(0x10, s.Cs.Selector);
        Assert.True(s.Cs.Long);
        Assert.False(s.Cs.DefaultBig);
        Assert.True(s.Cs.Present);
        foreach (var seg in new[] { s.Ds, s.Es, s.Ss, s.Fs, s.Gs })
        {
            Assert.Equal(0x18, seg.Selector);
            Assert.Equal(0UL, seg.Base);
            Assert.Equal(0xFFFF_FFFFu, seg.Limit);
        }

        // The GDT in guest memory agrees with the cached descriptors (a guest reloading the selectors gets the same).
        Assert.Equal(0x500UL, s.Gdt.Base);
        Assert.True(s.Gdt.Limit >= 0x1F);
        Assert.Equal(0x00AF_9B00_0000_FFFFUL, _memory.U64(0x500 + 0x10));
        Assert.Equal(0x00CF_9300_0000_FFFFUL, _memory.U64(0x500 + 0x18));
    }

    [Fact]
    public void Load_Always_IdentityMapsFirst4GiBWith2MiBPages()
    {
        var s = Load(new FakeBzImage()).BootCpu.System;

        ulong pml4 = s.Cr3 & ~0xFFFUL;
        ulong pml4e = _memory.U64(pml4);
        Assert.Equal(1UL, pml4e & 1);
        ulong pdpt = pml4e & 0x000F_FFFF_FFFF_F000;
        for (ulong gib = 0; gib < 4; gib++)
        {
            ulong pdpte = _memory.U64(pdpt + (gib * 8));
            Assert.Equal(1UL, pdpte & 1);
            ulong pd = pdpte & 0x000F_FFFF_FFFF_F000;
            foreach (ulong index in new ulong[] { 0, 1, 255, 511 })
            {
                ulong pde = _memory.U64(pd + (index * 8));
                Assert.Equal(0x83UL, pde & 0x83); // present, writable, 2 MiB page
                Assert.Equal((gib << 30) + (index << 21), pde & 0x000F_FFFF_FFE0_0000);
            }
        }
    }

    [Fact]
    public void Load_Always_FillsZeroPageFieldsAtSpecOffsets()
    {
        var image = new FakeBzImage();
        var result = Load(image, "console=ttyS0 quiet");

        Assert.Equal(ZeroPage, result.BootInfoAddress);
        Assert.Equal(0x53726448U, _memory.U32(ZeroPage + 0x202)); // header "HdrS" copied
        Assert.Equal(0x020F, _memory.U16(ZeroPage + 0x206)); // version copied
        Assert.Equal(0xAA55, _memory.U16(ZeroPage + 0x1FE)); // boot_flag copied
        Assert.Equal(4, _memory.U8(ZeroPage + 0x1F1)); // setup_sects copied
        Assert.Equal(0xFFFF, _memory.U16(ZeroPage + 0x1FA)); // vid_mode copied
        Assert.Equal(0x5A, _memory.U8(ZeroPage + FakeBzImage.HeaderEnd - 1)); // last header byte copied
        Assert.Equal(0, _memory.U8(ZeroPage + 0x1EF)); // sentinel stays 0
        Assert.Equal(0xFF, _memory.U8(ZeroPage + 0x210)); // type_of_loader
        byte loadflags = _memory.U8(ZeroPage + 0x211);
        Assert.Equal(0x81, loadflags & 0x81); // LOADED_HIGH | CAN_USE_HEAP
        Assert.Equal(0xFE00, _memory.U16(ZeroPage + 0x224)); // heap_end_ptr
        Assert.Equal(0x7FFF_FFFFU, _memory.U32(ZeroPage + 0x22C)); // initrd_addr_max copied
        Assert.Equal(0x20_0000U, _memory.U32(ZeroPage + 0x230)); // kernel_alignment copied
        Assert.Equal(0x0003, _memory.U16(ZeroPage + 0x236)); // xloadflags copied
        Assert.Equal(2047U, _memory.U32(ZeroPage + 0x238)); // cmdline_size copied
        Assert.Equal(0x100_0000UL, _memory.U64(ZeroPage + 0x258)); // pref_address copied
        Assert.Equal(0x40_0000U, _memory.U32(ZeroPage + 0x260)); // init_size copied

        uint cmdLinePtr = _memory.U32(ZeroPage + 0x228);
        Assert.Equal(0U, _memory.U32(ZeroPage + 0x0C8)); // ext_cmd_line_ptr
        Assert.Equal(result.CommandLineAddress, cmdLinePtr);
        Assert.Equal("console=ttyS0 quiet", _memory.CString(cmdLinePtr));

        Assert.Equal(0U, _memory.U32(ZeroPage + 0x218)); // no initrd
        Assert.Equal(0U, _memory.U32(ZeroPage + 0x21C));
    }

    [Fact]
    public void Load_Always_WritesE820TableIntoZeroPage()
    {
        var result = Load(new FakeBzImage());

        int count = _memory.U8(ZeroPage + 0x1E8);
        Assert.Equal(result.MemoryMap.Count, count);
        Assert.Equal(3, count);
        for (int i = 0; i < count; i++)
        {
            ulong entry = ZeroPage + 0x2D0 + (ulong)(i * 20);
            Assert.Equal(result.MemoryMap[i].Address, _memory.U64(entry));
            Assert.Equal(result.MemoryMap[i].Size, _memory.U64(entry + 8));
            Assert.Equal((uint)result.MemoryMap[i].Type, _memory.U32(entry + 16));
        }

        Assert.Equal(new E820Entry(0x100000, Ram - 0x100000, E820Type.Ram), result.MemoryMap[2]);
    }

    [Fact]
    public void Load_WithInitrd_PlacesItPageAlignedAtTopOfRam()
    {
        string initrd = _files.WritePattern("initrd.img", 100_000, seed: 1);
        var result = Load(new FakeBzImage(), "console=ttyS0", initrd);

        uint image = _memory.U32(ZeroPage + 0x218);
        uint size = _memory.U32(ZeroPage + 0x21C);
        Assert.Equal(100_000U, size);
        Assert.Equal(0U, image % 4096);
        Assert.True(image + size <= Ram);
        Assert.True(Ram - (image + size) < 4096, "the initrd sits as high as possible");
        Assert.Equal(0U, _memory.U32(ZeroPage + 0x0C0)); // ext_ramdisk_image
        Assert.Equal(0U, _memory.U32(ZeroPage + 0x0C4)); // ext_ramdisk_size
        Assert.Equal(image, result.InitrdAddress);
        var copied = _memory.Bytes(image, (int)size);
        for (int i = 0; i < copied.Length; i += 997)
        {
            Assert.Equal(TempFiles.Pattern(i, 1), copied[i]);
        }
    }

    [Fact]
    public void Load_WithInitrdAddrMax_KeepsInitrdBelowIt()
    {
        string initrd = _files.WritePattern("initrd.img", 8192, seed: 2);
        Load(new FakeBzImage { InitrdAddrMax = 0x3FF_FFFF }, "", initrd);

        uint image = _memory.U32(ZeroPage + 0x218);
        Assert.True(image + 8192 <= 0x400_0000);
        Assert.True(image >= 0x400_0000 - 8192 - 4096);
    }

    [Fact]
    public void Load_WithTwoInitrds_ConcatenatesThemFourByteAligned()
    {
        string first = _files.WritePattern("a.cpio", 1001, seed: 3);
        string second = _files.WritePattern("b.cpio", 500, seed: 4);
        var result = Load(new FakeBzImage(), "", first, second);

        Assert.Equal(1004UL + 500, result.InitrdSize);
        Assert.Equal(2, result.Modules.Count);
        Assert.Equal(result.InitrdAddress + 1004, result.Modules[1].Address);
        Assert.Equal(TempFiles.Pattern(1000, 3), _memory.U8(result.InitrdAddress + 1000));
        Assert.Equal(new byte[3], _memory.Bytes(result.InitrdAddress + 1001, 3));
        Assert.Equal(TempFiles.Pattern(0, 4), _memory.U8(result.InitrdAddress + 1004));
        Assert.Equal(1504U, _memory.U32(ZeroPage + 0x21C));
    }

    [Fact]
    public void Load_Always_WritesMpTable()
    {
        var result = Load(new FakeBzImage());

        Assert.Equal(0x9FC00UL, result.MpTableAddress);
        Assert.Equal("_MP_", System.Text.Encoding.ASCII.GetString(_memory.Bytes(0x9FC00, 4)));
        Assert.Equal(639, _memory.U16(0x413)); // BDA base memory size in KiB
    }

    [Fact]
    public void Load_CommandLineLongerThanCmdlineSize_Throws()
    {
        var e = Assert.Throws<BootImageException>(() => Load(new FakeBzImage { CmdlineSize = 16 }, new string('x', 17)));
        Assert.Contains("bzImage", e.Message);
        Assert.Contains("command line", e.Message);
    }

    [Fact]
    public void Load_CommandLineOfExactlyCmdlineSize_Loads()
    {
        var result = Load(new FakeBzImage { CmdlineSize = 16 }, new string('x', 16));

        Assert.Equal(new string('x', 16), _memory.CString(result.CommandLineAddress));
    }

    [Fact]
    public void Load_InitrdLargerThanRoomBelowInitrdAddrMax_ThrowsNamingInitrd()
    {
        string initrd = _files.WritePattern("big.img", 4 << 20, seed: 0);
        var e = Assert.Throws<BootImageException>(() => Load(new FakeBzImage { InitrdAddrMax = 0x13F_FFFF }, "", initrd));

        Assert.StartsWith(initrd + ": ", e.Message);
        Assert.Contains("does not fit", e.Message);
    }

    [Fact]
    public void Load_MissingInitrd_ThrowsNamingInitrd()
    {
        string missing = Path.Combine(_files.Directory, "nope.img");
        var e = Assert.Throws<BootImageException>(() => Load(new FakeBzImage(), "", missing));

        Assert.Equal($"{missing}: no such file", e.Message);
    }

    private static readonly Dictionary<string, Action<FakeBzImage>> s_corruptions = new()
    {
        ["old protocol"] = i => i.Version = 0x020B,
        ["no 64-bit entry"] = i => i.XLoadFlags = 0,
        ["bad boot flag"] = i => i.BootFlag = 0x1234,
        ["zImage"] = i => i.LoadFlags = 0,
        ["truncated payload"] = i => i.SysSize = 0x10000,
        ["kernel larger than RAM"] = i => i.InitSize = 0x2000_0000,
    };

    [Theory]
    [InlineData("old protocol", "2.11")]
    [InlineData("no 64-bit entry", "XLF_KERNEL_64")]
    [InlineData("bad boot flag", "boot_flag")]
    [InlineData("zImage", "LOADED_HIGH")]
    [InlineData("truncated payload", "truncated")]
    [InlineData("kernel larger than RAM", "outside guest RAM")]
    public void Load_MalformedHeader_ThrowsNamingFile(string what, string reason)
    {
        var image = new FakeBzImage();
        s_corruptions[what](image);
        string path = _files.Write("bad-" + what.Replace(' ', '-'), image.Build());

        var e = Assert.Throws<BootImageException>(() => KernelLoader.Load(_memory, new KernelLoadOptions(path, [], "", 1)));

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(reason, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(path, e.FilePath);
    }

    [Fact]
    public void Load_SetupSectorsPastEndOfFile_Throws()
    {
        byte[] full = new FakeBzImage { SetupSects = 30 }.Build();
        string path = _files.Write("short", full[..(15 * 512)]);

        var e = Assert.Throws<BootImageException>(() => KernelLoader.Load(_memory, new KernelLoadOptions(path, [], "", 1)));

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("setup code", e.Message);
    }

    [Theory]
    [InlineData(0x206)]
    [InlineData(0x240)]
    [InlineData(0x263)]
    public void Load_FileCutInsideSetupHeader_Throws(int length)
    {
        string path = _files.Write("cut", new FakeBzImage().Build()[..length]);

        var e = Assert.Throws<BootImageException>(() => KernelLoader.Load(_memory, new KernelLoadOptions(path, [], "", 1)));

        Assert.StartsWith(path + ": ", e.Message);
    }
}
