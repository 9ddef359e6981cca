// Builds small ELF32/ELF64 x86 executables (System V gABI layout) with chosen PT_LOAD segments and notes.
using System.Buffers.Binary;
using System.Text;

namespace Ringvisor.Machine.Tests.Boot;

internal sealed class ElfBuilder
{
    public const int Elf64PhdrOffset = 64;
    public const int Elf32PhdrOffset = 52;

    private readonly List<Segment> _segments = [];
    private readonly List<byte[]> _notes = [];

    public ElfBuilder(bool is64)
    {
        Is64 = is64;
        Machine = is64 ? (ushort)62 : (ushort)3;
    }

    public bool Is64 { get; }

    public ushort Machine { get; set; }

    public ushort Type { get; set; } = 2;

    public ulong Entry { get; set; }

    public int PhdrSize => Is64 ? 56 : 32;

    public int PhdrOffset => Is64 ? Elf64PhdrOffset : Elf32PhdrOffset;

    public ElfBuilder Load(ulong paddr, byte[] data, ulong memSize = 0, ulong? vaddr = null)
    {
        _segments.Add(new Segment(vaddr ?? paddr, paddr, data, Math.Max(memSize, (ulong)data.Length)));
        return this;
    }

    /// <summary>Adds a note (namesz includes the NUL; name and desc padded to 4 bytes) to the image's PT_NOTE segment.</summary>
    public ElfBuilder Note(string owner, uint type, byte[] desc)
    {
        byte[] name = Encoding.ASCII.GetBytes(owner + "\0");
        var note = new byte[12 + Align4(name.Length) + Align4(desc.Length)];
        BinaryPrimitives.WriteUInt32LittleEndian(note, (uint)name.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(note.AsSpan(4), (uint)desc.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(note.AsSpan(8), type);
        name.CopyTo(note, 12);
        desc.CopyTo(note, 12 + Align4(name.Length));
        _notes.Add(note);
        return this;
    }

    /// <summary>XEN_ELFNOTE_PHYS32_ENTRY (18) with a 4-byte value, as Linux emits it.</summary>
    public ElfBuilder PvhNote(uint entry)
    {
        var desc = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(desc, entry);
        return Note("Xen", 18, desc);
    }

    /// <summary>File offset of segment <paramref name="index"/>'s data in the built image.</summary>
    public int SegmentFileOffset(int index) => DataStart + _segments.Take(index).Sum(s => Align16(s.Data.Length));

    private int PhdrCount => _segments.Count + (_notes.Count > 0 ? 1 : 0);

    private int DataStart => Align16(PhdrOffset + (PhdrCount * PhdrSize));

    public byte[] Build()
    {
        byte[] notes = [.. _notes.SelectMany(n => n)];
        int notesOffset = SegmentFileOffset(_segments.Count);
        var image = new byte[notesOffset + notes.Length];
        var s = image.AsSpan();
        s[0] = 0x7F;
        s[1] = (byte)'E';
        s[2] = (byte)'L';
        s[3] = (byte)'F';
        s[4] = Is64 ? (byte)2 : (byte)1;
        s[5] = 1; // little-endian
        s[6] = 1; // EV_CURRENT
        BinaryPrimitives.WriteUInt16LittleEndian(s[16..], Type);
        BinaryPrimitives.WriteUInt16LittleEndian(s[18..], Machine);
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], 1);
        if (Is64)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(s[0x18..], Entry);
            BinaryPrimitives.WriteUInt64LittleEndian(s[0x20..], (ulong)PhdrOffset);
            BinaryPrimitives.WriteUInt16LittleEndian(s[0x34..], 64);
            BinaryPrimitives.WriteUInt16LittleEndian(s[0x36..], (ushort)PhdrSize);
            BinaryPrimitives.WriteUInt16LittleEndian(s[0x38..], (ushort)PhdrCount);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(s[0x18..], (uint)Entry);
            BinaryPrimitives.WriteUInt32LittleEndian(s[0x1C..], (uint)PhdrOffset);
            BinaryPrimitives.WriteUInt16LittleEndian(s[0x28..], 52);
            BinaryPrimitives.WriteUInt16LittleEndian(s[0x2A..], (ushort)PhdrSize);
            BinaryPrimitives.WriteUInt16LittleEndian(s[0x2C..], (ushort)PhdrCount);
        }

        int ph = PhdrOffset;
        for (int i = 0; i < _segments.Count; i++)
        {
            var seg = _segments[i];
            int offset = SegmentFileOffset(i);
            WritePhdr(s[ph..], 1, (ulong)offset, seg.Vaddr, seg.Paddr, (ulong)seg.Data.Length, seg.MemSize, 0x1000);
            seg.Data.CopyTo(s[offset..]);
            ph += PhdrSize;
        }

        if (_notes.Count > 0)
        {
            WritePhdr(s[ph..], 4, (ulong)notesOffset, 0, 0, (ulong)notes.Length, 0, 4);
            notes.CopyTo(s[notesOffset..]);
        }

        return image;
    }

    private void WritePhdr(Span<byte> p, uint type, ulong offset, ulong vaddr, ulong paddr, ulong filesz, ulong memsz, ulong align)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(p, type);
        if (Is64)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(p[4..], 5); // R+X
            BinaryPrimitives.WriteUInt64LittleEndian(p[8..], offset);
            BinaryPrimitives.WriteUInt64LittleEndian(p[16..], vaddr);
            BinaryPrimitives.WriteUInt64LittleEndian(p[24..], paddr);
            BinaryPrimitives.WriteUInt64LittleEndian(p[32..], filesz);
            BinaryPrimitives.WriteUInt64LittleEndian(p[40..], memsz);
            BinaryPrimitives.WriteUInt64LittleEndian(p[48..], align);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(p[4..], (uint)offset);
            BinaryPrimitives.WriteUInt32LittleEndian(p[8..], (uint)vaddr);
            BinaryPrimitives.WriteUInt32LittleEndian(p[12..], (uint)paddr);
            BinaryPrimitives.WriteUInt32LittleEndian(p[16..], (uint)filesz);
            BinaryPrimitives.WriteUInt32LittleEndian(p[20..], (uint)memsz);
            BinaryPrimitives.WriteUInt32LittleEndian(p[24..], 5);
            BinaryPrimitives.WriteUInt32LittleEndian(p[28..], (uint)align);
        }
    }

    private static int Align4(int n) => (n + 3) & ~3;

    private static int Align16(int n) => (n + 15) & ~15;

    private sealed record Segment(ulong Vaddr, ulong Paddr, byte[] Data, ulong MemSize);
}
