// Builds a minimal ELF64 relocatable object with a .modinfo section, shaped like a kernel module, for the tests.
using System.Buffers.Binary;
using System.Text;

namespace Ringvisor.Machine.Tests.Images;

internal static class SyntheticElf
{
    public static byte[] Module(string name, string depends) =>
        WithModinfo($"license=GPL\0\0depends={depends}\0alias=virtio:d00000001v*\0name={name}\0vermagic=6.1.0 SMP mod_unload\0");

    /// <summary>Layout: ELF header (64) | .modinfo bytes | .shstrtab bytes | 3 section headers (null, .modinfo, .shstrtab).</summary>
    public static byte[] WithModinfo(string modinfo)
    {
        byte[] info = Encoding.ASCII.GetBytes(modinfo);
        byte[] shstr = Encoding.ASCII.GetBytes("\0.modinfo\0.shstrtab\0");
        int infoOff = 64, strOff = infoOff + info.Length, shoff = (strOff + shstr.Length + 7) & ~7;
        byte[] elf = new byte[shoff + 3 * 64];
        elf[0] = 0x7F;
        elf[1] = (byte)'E';
        elf[2] = (byte)'L';
        elf[3] = (byte)'F';
        elf[4] = 2; // ELFCLASS64
        elf[5] = 1; // little-endian
        elf[6] = 1; // EV_CURRENT
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(0x10), 1);    // ET_REL
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(0x12), 62);   // EM_X86_64
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(0x28), (ulong)shoff);
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(0x34), 64);   // e_ehsize
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(0x3A), 64);   // e_shentsize
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(0x3C), 3);    // e_shnum
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(0x3E), 2);    // e_shstrndx
        info.CopyTo(elf, infoOff);
        shstr.CopyTo(elf, strOff);
        Section(elf, shoff + 64, nameOffset: 1, type: 1, infoOff, info.Length);   // .modinfo, SHT_PROGBITS
        Section(elf, shoff + 128, nameOffset: 10, type: 3, strOff, shstr.Length); // .shstrtab, SHT_STRTAB
        return elf;
    }

    private static void Section(byte[] elf, int at, uint nameOffset, uint type, int offset, int size)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(elf.AsSpan(at), nameOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(elf.AsSpan(at + 4), type);
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(at + 0x18), (ulong)offset);
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(at + 0x20), (ulong)size);
    }
}
