// The ELF vmlinux paths of KernelLoader: long-mode entry with boot_params for a plain ELF64, the PVH entry with
// hvm_start_info for an image carrying XEN_ELFNOTE_PHYS32_ENTRY, and malformed ELF files.
using System.Buffers.Binary;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;
using Ringvisor.Machine.Boot;

namespace Ringvisor.Machine.Tests.Boot;

public sealed class ElfKernelLoaderTests : IDisposable
{
    private const ulong Ram = 128UL << 20;
    private const ulong Load = 0x100_0000;

    private readonly TempFiles _files = new();
    private readonly GuestMemory _memory = GuestMemory.Create(Ram);

    public void Dispose()
    {
        _memory.Dispose();
        _files.Dispose();
    }

    private static byte[] Text(int length, int seed)
    {
        var data = new byte[length];
        for (int i = 0; i < length; i++)
        {
            data[i] = TempFiles.Pattern(i, seed);
        }

        return data;
    }

    private BootResult Boot(byte[] image, string cmdline = "root=/dev/vda", params string[] initrds) =>
        KernelLoader.Load(_memory, new KernelLoadOptions(_files.Write("vmlinux", image), initrds, cmdline, 2));

    private BootImageException BootFails(byte[] image, out string path)
    {
        path = _files.Write("vmlinux-bad", image);
        string p = path;
        return Assert.Throws<BootImageException>(() => KernelLoader.Load(_memory, new KernelLoadOptions(p, [], "", 1)));
    }

    private static ElfBuilder Vmlinux()
    {
        byte[] text = Text(0x3000, 1);
        GuestCode.LongModeStub(Load).CopyTo(text, 0);
        return new ElfBuilder(is64: true) { Entry = Load }
            .Load(Load, text)
            .Load(Load + 0x4000, Text(0x800, 2), memSize: 0x2000);
    }

    [Fact]
    public void Load_Elf64WithoutNote_EntersLongModeAtEntryWithBootParams()
    {
        var result = Boot(Vmlinux().Build());

        Assert.Equal(BootFormat.Elf64, result.Format);
        var s = result.BootCpu;
        Assert.Equal(Load, s.Registers.Rip);
        Assert.Equal(0x7000UL, s.Registers.Rsi);
        Assert.Equal(SystemRegisters.EferLme | SystemRegisters.EferLma, s.System.Efer);
        Assert.NotEqual(0UL, s.System.Cr0 & SystemRegisters.Cr0Pg);
        Assert.True(s.System.Cs.Long);
        Assert.Equal(0x10, s.System.Cs.Selector);
        Assert.Equal(0x18, s.System.Ds.Selector);

        Assert.Equal(0x53726448U, _memory.U32(0x7000 + 0x202));
        Assert.Equal(0xAA55, _memory.U16(0x7000 + 0x1FE));
        Assert.Equal(0xFF, _memory.U8(0x7000 + 0x210));
        Assert.Equal("root=/dev/vda", _memory.CString(_memory.U32(0x7000 + 0x228)));
        Assert.Equal(3, _memory.U8(0x7000 + 0x1E8));
        Assert.Equal(GuestCode.LongModeStub(Load), _memory.Bytes(Load, GuestCode.LongModeStub(Load).Length));
    }

    [Fact]
    public void Load_Elf64Segments_CopiesFileBytesAndZeroesBss()
    {
        _memory.Fill(Load + 0x4800, 0x1800, 0xCC); // stale bytes where the bss goes
        var result = Boot(Vmlinux().Build());

        Assert.Equal(Text(0x800, 2), _memory.Bytes(Load + 0x4000, 0x800));
        Assert.All(_memory.Bytes(Load + 0x4800, 0x1800), b => Assert.Equal(0, b));
        Assert.Equal(Load, result.KernelStart);
        Assert.Equal(Load + 0x6000, result.KernelEnd);
    }

    [Fact]
    public void Load_Elf64WithVirtualEntry_TranslatesThroughSegment()
    {
        const ulong Virtual = 0xFFFF_FFFF_8100_0000;
        byte[] text = Text(0x1000, 1);
        var image = new ElfBuilder(is64: true) { Entry = Virtual + 0x40 }.Load(Load, text, vaddr: Virtual).Build();

        var result = Boot(image);

        Assert.Equal(Load + 0x40, result.BootCpu.Registers.Rip);
    }

    [Fact]
    public void Load_Elf64WithInitrd_PlacesItAboveKernelInZeroPage()
    {
        string initrd = _files.WritePattern("initrd", 5000, seed: 9);
        var result = Boot(Vmlinux().Build(), "", initrd);

        uint image = _memory.U32(0x7000 + 0x218);
        Assert.Equal(5000U, _memory.U32(0x7000 + 0x21C));
        Assert.True(image >= result.KernelEnd);
        Assert.Equal(0U, image % 4096);
        Assert.Equal(TempFiles.Pattern(4999, 9), _memory.U8(image + 4999UL));
    }

    [Fact]
    public void Load_Elf64WithPvhNote_Enters32BitProtectedModeWithStartInfo()
    {
        const uint PvhEntry = (uint)Load + 0x100;
        var image = Vmlinux().PvhNote(PvhEntry).Build();
        string initrd = _files.WritePattern("initrd", 3000, seed: 4);

        var result = Boot(image, "console=hvc0", initrd);

        Assert.Equal(BootFormat.Pvh, result.Format);
        var s = result.BootCpu;
        Assert.Equal((ulong)PvhEntry, s.Registers.Rip);
        Assert.Equal(0UL, s.System.Cr0 & SystemRegisters.Cr0Pg);
        Assert.Equal(SystemRegisters.Cr0Pe, s.System.Cr0 & SystemRegisters.Cr0Pe);
        Assert.Equal(0UL, s.System.Efer & (SystemRegisters.EferLme | SystemRegisters.EferLma));
        Assert.True(s.System.Cs.DefaultBig);
        Assert.False(s.System.Cs.Long);
        Assert.Equal(0UL, s.System.Cs.Base);
        Assert.Equal(0xFFFF_FFFFu, s.System.Cs.Limit);
        Assert.Equal(0UL, s.System.Tr.Base);
        Assert.Equal(0x67u, s.System.Tr.Limit);
        Assert.Equal(0UL, s.Registers.Rflags & (1 << 9)); // IF clear

        ulong info = s.Registers.Rbx;
        Assert.Equal(result.BootInfoAddress, info);
        Assert.Equal(0x336EC578U, _memory.U32(info));
        Assert.Equal(1U, _memory.U32(info + 4));
        Assert.Equal("console=hvc0", _memory.CString(_memory.U64(info + 0x18)));
        Assert.Equal(1U, _memory.U32(info + 0x0C)); // nr_modules
        ulong mod = _memory.U64(info + 0x10);
        Assert.Equal(result.InitrdAddress, _memory.U64(mod));
        Assert.Equal(3000UL, _memory.U64(mod + 8));
        Assert.Equal(TempFiles.Pattern(0, 4), _memory.U8(_memory.U64(mod)));

        uint entries = _memory.U32(info + 0x30);
        ulong map = _memory.U64(info + 0x28);
        Assert.Equal((uint)result.MemoryMap.Count, entries);
        for (int i = 0; i < entries; i++)
        {
            ulong e = map + (ulong)(i * 24);
            Assert.Equal(result.MemoryMap[i].Address, _memory.U64(e));
            Assert.Equal(result.MemoryMap[i].Size, _memory.U64(e + 8));
            Assert.Equal((uint)result.MemoryMap[i].Type, _memory.U32(e + 16));
        }
    }

    [Fact]
    public void Load_Elf32WithPvhNote_BootsThroughPvh()
    {
        var image = new ElfBuilder(is64: false) { Entry = 0x200000 }
            .Load(0x200000, Text(0x1000, 3))
            .PvhNote(0x200010)
            .Build();

        var result = Boot(image);

        Assert.Equal(BootFormat.Pvh, result.Format);
        Assert.Equal(0x200010UL, result.BootCpu.Registers.Rip);
        Assert.Equal(0U, _memory.U32(result.BootInfoAddress + 0x0C)); // no modules without an initrd
    }

    [Fact]
    public void Load_PvhNoteWith8ByteValue_IsAccepted()
    {
        var desc = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(desc, Load + 0x20);
        var image = Vmlinux().Note("Xen", 18, desc).Build();

        Assert.Equal(Load + 0x20, Boot(image).BootCpu.Registers.Rip);
    }

    [Fact]
    public void Load_OtherNotesOnly_BootsAsElf64()
    {
        var image = Vmlinux().Note("GNU", 3, new byte[20]).Note("Xen", 6, new byte[4]).Build();

        Assert.Equal(BootFormat.Elf64, Boot(image).Format);
    }

    [Fact]
    public void Load_Elf32WithoutPvhOrMultiboot_Throws()
    {
        var image = new ElfBuilder(is64: false) { Entry = 0x200000 }.Load(0x200000, Text(0x100, 1)).Build();

        var e = BootFails(image, out string path);

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("neither a PVH entry note nor a multiboot header", e.Message);
    }

    [Fact]
    public void Load_SegmentPastEndOfFile_Throws()
    {
        var builder = Vmlinux();
        byte[] image = builder.Build();
        // Segment 0's p_filesz (ELF64 phdr + 32) grows past the file.
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(ElfBuilder.Elf64PhdrOffset + 32), (ulong)image.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(ElfBuilder.Elf64PhdrOffset + 40), (ulong)image.Length);

        var e = BootFails(image, out string path);

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("past the end of the file", e.Message);
    }

    [Fact]
    public void Load_SegmentPastRam_Throws()
    {
        var image = new ElfBuilder(is64: true) { Entry = Ram - 0x1000 }.Load(Ram - 0x1000, Text(0x2000, 1)).Build();

        var e = BootFails(image, out string path);

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("outside guest RAM", e.Message);
    }

    [Fact]
    public void Load_SegmentInPciHole_Throws()
    {
        var image = new ElfBuilder(is64: true) { Entry = 0xC000_0000 }.Load(0xC000_0000, Text(0x100, 1)).Build();

        var e = BootFails(image, out string path);

        Assert.Contains("outside guest RAM", e.Message);
    }

    [Theory]
    [InlineData(0x7000UL, "zero page")]
    [InlineData(0x9000UL, "page tables")]
    [InlineData(0x500UL, "GDT")]
    [InlineData(0x9FC00UL, "BIOS")]
    public void Load_SegmentOverlappingBootTables_Throws(ulong paddr, string table)
    {
        var image = new ElfBuilder(is64: true) { Entry = paddr }.Load(paddr, Text(0x100, 1)).Build();

        var e = BootFails(image, out string path);

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("overlaps", e.Message);
        Assert.Contains(table, e.Message);
    }

    [Fact]
    public void Load_OverlappingSegments_Throws()
    {
        var image = new ElfBuilder(is64: true) { Entry = Load }.Load(Load, Text(0x2000, 1)).Load(Load + 0x1000, Text(0x100, 2)).Build();

        var e = BootFails(image, out _);

        Assert.Contains("overlaps ELF segment 0", e.Message);
    }

    [Fact]
    public void Load_EntryOutsideSegments_Throws()
    {
        var image = new ElfBuilder(is64: true) { Entry = 0x5000_0000 }.Load(Load, Text(0x100, 1)).Build();

        var e = BootFails(image, out _);

        Assert.Contains("entry point", e.Message);
    }

    [Fact]
    public void Load_FileSizeLargerThanMemorySize_Throws()
    {
        byte[] image = Vmlinux().Build();
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(ElfBuilder.Elf64PhdrOffset + 40), 0x10);

        var e = BootFails(image, out _);

        Assert.Contains("more file bytes", e.Message);
    }

    public static TheoryData<string, int, long, int, string> HeaderCorruptions => new()
    {
        // description, offset, value, width, expected reason
        { "program headers past end", 0x20, 0x7FFF_0000, 8, "program headers" },
        { "no program headers", 0x38, 0, 2, "no program headers" },
        { "tiny phentsize", 0x36, 8, 2, "program header size" },
        { "big endian", 5, 2, 1, "big-endian" },
        { "bad class", 4, 7, 1, "ELF class" },
        { "not executable", 16, 1, 2, "ET_EXEC" },
        { "not x86", 18, 40, 2, "not x86" },
    };

    [Theory]
    [MemberData(nameof(HeaderCorruptions))]
    public void Load_CorruptElfHeader_ThrowsNamingFile(string what, int offset, long value, int width, string reason)
    {
        byte[] image = Vmlinux().Build();
        var span = image.AsSpan(offset);
        switch (width)
        {
            case 1: span[0] = (byte)value; break;
            case 2: BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)value); break;
            default: BinaryPrimitives.WriteUInt64LittleEndian(span, (ulong)value); break;
        }

        var e = BootFails(image, out string path);

        Assert.True(e.Message.StartsWith(path + ": ", StringComparison.Ordinal), what);
        Assert.Contains(reason, e.Message);
    }

    [Theory]
    [InlineData(20)]
    [InlineData(60)]
    public void Load_TruncatedElfHeader_Throws(int length)
    {
        var e = BootFails(Vmlinux().Build()[..length], out string path);

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Load_TruncatedNote_Throws()
    {
        var image = Vmlinux().Note("Xen", 18, new byte[4]).Build();
        // The note's descsz (at the start of the last 20 bytes: namesz, descsz, type, "Xen\0", desc) grows past the segment.
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(image.Length - 16), 0x1000);

        var e = BootFails(image, out _);

        Assert.Contains("note", e.Message);
    }
}
