// A validated view of an ELF32/ELF64 little-endian x86 executable: its PT_LOAD segments, entry point and, if present,
// the Xen PVH entry note. Every offset and size is checked against the file before use (System V gABI, "ELF Header",
// "Program Header", "Note Section").
using System.Buffers.Binary;

namespace Ringvisor.Machine.Boot;

internal sealed class ElfImage
{
    // ELF gABI e_ident indexes and values.
    private const int EiClass = 4;
    private const int EiData = 5;
    private const byte ElfClass32 = 1;
    private const byte ElfClass64 = 2;
    private const byte ElfDataLittle = 1;
    private const ushort EtExec = 2;
    public const ushort EmI386 = 3;
    public const ushort EmX8664 = 62;
    private const uint PtLoad = 1;
    private const uint PtNote = 4;
    private const ushort PnXnum = 0xFFFF;
    private const int Elf32HeaderSize = 52;
    private const int Elf64HeaderSize = 64;
    private const int Elf32PhdrSize = 32;
    private const int Elf64PhdrSize = 56;

    /// <summary>xen/include/public/elfnote.h: XEN_ELFNOTE_PHYS32_ENTRY, the 32-bit physical PVH entry point.</summary>
    private const uint XenElfNotePhys32Entry = 18;

    private ElfImage(bool is64, ushort machine, ulong entry, IReadOnlyList<ElfSegment> loads, ulong? pvhEntry)
    {
        Is64 = is64;
        Machine = machine;
        Entry = entry;
        Loads = loads;
        PvhEntry = pvhEntry;
    }

    public bool Is64 { get; }

    public ushort Machine { get; }

    /// <summary>e_entry as written in the file (may be a virtual address).</summary>
    public ulong Entry { get; }

    /// <summary>PT_LOAD segments with a non-zero memory size, in program-header order.</summary>
    public IReadOnlyList<ElfSegment> Loads { get; }

    /// <summary>The XEN_ELFNOTE_PHYS32_ENTRY value, when the image has one.</summary>
    public ulong? PvhEntry { get; }

    public static bool HasMagic(ReadOnlySpan<byte> data) =>
        data.Length >= 4 && data[0] == 0x7F && data[1] == (byte)'E' && data[2] == (byte)'L' && data[3] == (byte)'F';

    public static ElfImage Parse(ReadOnlySpan<byte> data, string path)
    {
        if (data.Length < Elf32HeaderSize)
        {
            throw new BootImageException(path, $"truncated ELF header ({data.Length} bytes)");
        }

        byte cls = data[EiClass];
        if (cls != ElfClass32 && cls != ElfClass64)
        {
            throw new BootImageException(path, $"unknown ELF class {cls}");
        }

        bool is64 = cls == ElfClass64;
        if (is64 && data.Length < Elf64HeaderSize)
        {
            throw new BootImageException(path, $"truncated ELF64 header ({data.Length} bytes)");
        }

        if (data[EiData] != ElfDataLittle)
        {
            throw new BootImageException(path, "big-endian ELF images are not supported");
        }

        ushort type = BinaryPrimitives.ReadUInt16LittleEndian(data[16..]);
        ushort machine = BinaryPrimitives.ReadUInt16LittleEndian(data[18..]);
        if (type != EtExec)
        {
            throw new BootImageException(path, $"ELF type {type} is not an executable (ET_EXEC)");
        }

        if (machine != EmI386 && machine != EmX8664)
        {
            throw new BootImageException(path, $"ELF machine {machine} is not x86");
        }

        ulong entry, phoff;
        int phentsize, phnum;
        if (is64)
        {
            entry = BinaryPrimitives.ReadUInt64LittleEndian(data[0x18..]);
            phoff = BinaryPrimitives.ReadUInt64LittleEndian(data[0x20..]);
            phentsize = BinaryPrimitives.ReadUInt16LittleEndian(data[0x36..]);
            phnum = BinaryPrimitives.ReadUInt16LittleEndian(data[0x38..]);
        }
        else
        {
            entry = BinaryPrimitives.ReadUInt32LittleEndian(data[0x18..]);
            phoff = BinaryPrimitives.ReadUInt32LittleEndian(data[0x1C..]);
            phentsize = BinaryPrimitives.ReadUInt16LittleEndian(data[0x2A..]);
            phnum = BinaryPrimitives.ReadUInt16LittleEndian(data[0x2C..]);
        }

        int minPhdr = is64 ? Elf64PhdrSize : Elf32PhdrSize;
        if (phnum == 0)
        {
            throw new BootImageException(path, "ELF image has no program headers");
        }

        if (phnum == PnXnum)
        {
            throw new BootImageException(path, "ELF image uses extended program header numbering (PN_XNUM), which is not supported");
        }

        if (phentsize < minPhdr)
        {
            throw new BootImageException(path, $"ELF program header size {phentsize} is smaller than {minPhdr}");
        }

        ulong tableSize = (ulong)phnum * (ulong)phentsize;
        if (phoff > (ulong)data.Length || tableSize > (ulong)data.Length - phoff)
        {
            throw new BootImageException(path, $"ELF program headers (offset 0x{phoff:X}, {phnum} x {phentsize} bytes) extend past the end of the file ({data.Length} bytes)");
        }

        var loads = new List<ElfSegment>();
        ulong? pvhEntry = null;
        for (int i = 0; i < phnum; i++)
        {
            var ph = data.Slice((int)phoff + (i * phentsize), minPhdr);
            uint ptype = BinaryPrimitives.ReadUInt32LittleEndian(ph);
            ulong offset, vaddr, paddr, filesz, memsz, align;
            if (is64)
            {
                offset = BinaryPrimitives.ReadUInt64LittleEndian(ph[8..]);
                vaddr = BinaryPrimitives.ReadUInt64LittleEndian(ph[16..]);
                paddr = BinaryPrimitives.ReadUInt64LittleEndian(ph[24..]);
                filesz = BinaryPrimitives.ReadUInt64LittleEndian(ph[32..]);
                memsz = BinaryPrimitives.ReadUInt64LittleEndian(ph[40..]);
                align = BinaryPrimitives.ReadUInt64LittleEndian(ph[48..]);
            }
            else
            {
                offset = BinaryPrimitives.ReadUInt32LittleEndian(ph[4..]);
                vaddr = BinaryPrimitives.ReadUInt32LittleEndian(ph[8..]);
                paddr = BinaryPrimitives.ReadUInt32LittleEndian(ph[12..]);
                filesz = BinaryPrimitives.ReadUInt32LittleEndian(ph[16..]);
                memsz = BinaryPrimitives.ReadUInt32LittleEndian(ph[20..]);
                align = BinaryPrimitives.ReadUInt32LittleEndian(ph[28..]);
            }

            if (ptype != PtLoad && ptype != PtNote)
            {
                continue;
            }

            if (offset > (ulong)data.Length || filesz > (ulong)data.Length - offset)
            {
                throw new BootImageException(path,
                    $"ELF segment {i} (file offset 0x{offset:X}, 0x{filesz:X} bytes) extends past the end of the file ({data.Length} bytes)");
            }

            if (ptype == PtNote)
            {
                pvhEntry ??= FindPvhEntry(data.Slice((int)offset, (int)filesz), align == 8 ? 8 : 4, path, i);
                continue;
            }

            if (filesz > memsz)
            {
                throw new BootImageException(path, $"ELF segment {i} has more file bytes (0x{filesz:X}) than memory bytes (0x{memsz:X})");
            }

            if (memsz > ulong.MaxValue - paddr)
            {
                throw new BootImageException(path, $"ELF segment {i} at 0x{paddr:X} (0x{memsz:X} bytes) wraps around the address space");
            }

            if (memsz != 0)
            {
                loads.Add(new ElfSegment(i, offset, vaddr, paddr, filesz, memsz));
            }
        }

        if (loads.Count == 0)
        {
            throw new BootImageException(path, "ELF image has no loadable (PT_LOAD) segments");
        }

        return new ElfImage(is64, machine, entry, loads, pvhEntry);
    }

    /// <summary>
    /// The entry point as a physical address: e_entry itself when a segment is loaded there, else e_entry translated
    /// through the segment whose virtual range holds it (as GRUB does for higher-half kernels).
    /// </summary>
    public ulong PhysicalEntry(string path)
    {
        foreach (var s in Loads)
        {
            if (Entry >= s.PhysicalAddress && Entry - s.PhysicalAddress < s.MemorySize)
            {
                return Entry;
            }
        }

        foreach (var s in Loads)
        {
            if (Entry >= s.VirtualAddress && Entry - s.VirtualAddress < s.MemorySize)
            {
                return s.PhysicalAddress + (Entry - s.VirtualAddress);
            }
        }

        throw new BootImageException(path, $"ELF entry point 0x{Entry:X} lies outside every PT_LOAD segment");
    }

    /// <summary>Claims and copies every PT_LOAD segment at its p_paddr, zeroing the bss part; returns the highest end.</summary>
    public ulong Load(BootMemoryPlan plan, ReadOnlySpan<byte> data, string path)
    {
        ulong end = 0;
        foreach (var s in Loads)
        {
            plan.Claim(s.PhysicalAddress, s.MemorySize, $"ELF segment {s.Index}", path);
            plan.Write(s.PhysicalAddress, data.Slice((int)s.Offset, (int)s.FileSize));
            plan.Zero(s.PhysicalAddress + s.FileSize, s.MemorySize - s.FileSize);
            end = Math.Max(end, s.PhysicalEnd);
        }

        return end;
    }

    private static ulong? FindPvhEntry(ReadOnlySpan<byte> notes, int alignment, string path, int segment)
    {
        int at = 0;
        while (notes.Length - at >= 12)
        {
            uint namesz = BinaryPrimitives.ReadUInt32LittleEndian(notes[at..]);
            uint descsz = BinaryPrimitives.ReadUInt32LittleEndian(notes[(at + 4)..]);
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(notes[(at + 8)..]);
            ulong nameStart = (ulong)at + 12;
            ulong descStart = nameStart + ImageFile.AlignUp(namesz, (ulong)alignment);
            ulong next = descStart + ImageFile.AlignUp(descsz, (ulong)alignment);
            if (descStart + descsz > (ulong)notes.Length || namesz > (ulong)notes.Length)
            {
                throw new BootImageException(path, $"ELF note at offset {at} of segment {segment} extends past the segment");
            }

            var name = notes.Slice((int)nameStart, (int)namesz);
            if (type == XenElfNotePhys32Entry && name.Length >= 3 && name[..3].SequenceEqual("Xen"u8) && (name.Length == 3 || name[3] == 0))
            {
                var desc = notes.Slice((int)descStart, (int)descsz);
                ulong value = descsz switch
                {
                    4 => BinaryPrimitives.ReadUInt32LittleEndian(desc),
                    8 => BinaryPrimitives.ReadUInt64LittleEndian(desc),
                    _ => throw new BootImageException(path, $"Xen PHYS32_ENTRY note has a {descsz}-byte value (4 or 8 expected)"),
                };
                return value;
            }

            if (next >= (ulong)notes.Length)
            {
                break;
            }

            at = (int)next;
        }

        return null;
    }
}
