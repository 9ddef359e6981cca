// Reads the ".modinfo" section of a Linux kernel module (an ELF64 relocatable object). modinfo holds NUL-separated
// "key=value" strings written by MODULE_INFO() (include/linux/moduleparam.h); modpost adds "name=" and
// "depends=" (comma-separated module names this one needs loaded first). Debian's linux-image packages do not ship
// modules.dep (depmod runs in postinst), so the image builder computes dependencies from these strings instead.
using System.Buffers.Binary;
using System.Text;

namespace Ringvisor.Machine.Images;

public sealed record KernelModuleInfo(string Name, IReadOnlyList<string> Depends)
{
    // ELF-64 Object File Format (System V gABI), §"ELF Header" and §"Section Header".
    private static ReadOnlySpan<byte> ElfMagic => [0x7F, (byte)'E', (byte)'L', (byte)'F'];
    private const int EiClass = 4;          // e_ident[EI_CLASS]
    private const byte ElfClass64 = 2;      // ELFCLASS64
    private const int EiData = 5;           // e_ident[EI_DATA]
    private const byte ElfData2Lsb = 1;     // ELFDATA2LSB: little-endian
    private const int ElfHeaderSize = 64;
    private const int EShoffOffset = 0x28;  // e_shoff (8 bytes)
    private const int EShentsizeOffset = 0x3A;
    private const int EShnumOffset = 0x3C;
    private const int EShstrndxOffset = 0x3E;
    private const int SectionHeaderSize = 64; // sizeof(Elf64_Shdr)
    private const int ShNameOffset = 0x00;
    private const int ShOffsetOffset = 0x18;
    private const int ShSizeOffset = 0x20;

    /// <summary>Module names treat '-' and '_' alike (kernel/params.c parameqn; kmod's modname normalisation).</summary>
    public static string NormalizeName(string name) => name.Replace('-', '_');

    /// <summary>The module's name from a file name: "virtio-rng.ko.xz" → "virtio_rng".</summary>
    public static string NameFromPath(string path)
    {
        string file = Path.GetFileName(path);
        int ko = file.IndexOf(".ko", StringComparison.Ordinal);
        return NormalizeName(ko > 0 ? file[..ko] : file);
    }

    /// <exception cref="InvalidDataException">The data is not a little-endian ELF64 object with a readable .modinfo section.</exception>
    public static KernelModuleInfo Parse(ReadOnlySpan<byte> elf, string fallbackName)
    {
        var fields = ReadModinfo(elf);
        string name = fields.TryGetValue("name", out var n) && n.Count > 0 ? NormalizeName(n[0]) : NormalizeName(fallbackName);
        var depends = new List<string>();
        if (fields.TryGetValue("depends", out var d))
        {
            foreach (string line in d)
            {
                foreach (string dep in line.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    depends.Add(NormalizeName(dep));
                }
            }
        }

        return new KernelModuleInfo(name, depends);
    }

    /// <summary>All key=value strings of .modinfo; keys such as "alias" repeat, so each maps to a list.</summary>
    public static Dictionary<string, List<string>> ReadModinfo(ReadOnlySpan<byte> elf)
    {
        if (elf.Length < ElfHeaderSize || !elf[..4].SequenceEqual(ElfMagic))
        {
            throw new InvalidDataException("not an ELF file");
        }

        if (elf[EiClass] != ElfClass64 || elf[EiData] != ElfData2Lsb)
        {
            throw new InvalidDataException("not a little-endian ELF64 object (expected an x86-64 kernel module)");
        }

        ulong shoff = BinaryPrimitives.ReadUInt64LittleEndian(elf[EShoffOffset..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf[EShentsizeOffset..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(elf[EShnumOffset..]);
        int shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(elf[EShstrndxOffset..]);
        if (shentsize < SectionHeaderSize || shnum == 0 || shstrndx >= shnum)
        {
            throw new InvalidDataException("ELF section header table is missing or malformed");
        }

        if (shoff > (ulong)elf.Length || (ulong)shnum * (ulong)shentsize > (ulong)elf.Length - shoff)
        {
            throw new InvalidDataException("ELF section header table lies outside the file");
        }

        ReadOnlySpan<byte> names = SectionData(elf, (int)shoff + shstrndx * shentsize);
        for (int i = 0; i < shnum; i++)
        {
            int header = (int)shoff + i * shentsize;
            uint nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(elf[(header + ShNameOffset)..]);
            if (nameOffset < names.Length && CString(names[(int)nameOffset..]) == ".modinfo")
            {
                return SplitModinfo(SectionData(elf, header));
            }
        }

        throw new InvalidDataException("ELF object has no .modinfo section (not a kernel module?)");
    }

    private static ReadOnlySpan<byte> SectionData(ReadOnlySpan<byte> elf, int header)
    {
        ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(elf[(header + ShOffsetOffset)..]);
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(elf[(header + ShSizeOffset)..]);
        if (offset > (ulong)elf.Length || size > (ulong)elf.Length - offset)
        {
            throw new InvalidDataException("ELF section lies outside the file");
        }

        return elf.Slice((int)offset, (int)size);
    }

    private static string CString(ReadOnlySpan<byte> s)
    {
        int end = s.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? s : s[..end]);
    }

    private static Dictionary<string, List<string>> SplitModinfo(ReadOnlySpan<byte> section)
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        while (!section.IsEmpty)
        {
            int end = section.IndexOf((byte)0);
            var entry = end < 0 ? section : section[..end];
            section = end < 0 ? ReadOnlySpan<byte>.Empty : section[(end + 1)..];
            if (entry.IsEmpty)
            {
                continue; // padding between entries
            }

            string text = Encoding.UTF8.GetString(entry);
            int eq = text.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                continue;
            }

            string key = text[..eq];
            if (!result.TryGetValue(key, out var list))
            {
                list = [];
                result[key] = list;
            }

            list.Add(text[(eq + 1)..]);
        }

        return result;
    }
}
