// Synthetic multiboot v1 kernels: an ELF32 whose first segment starts with the header, and a flat a.out-kludge image.
using System.Buffers.Binary;

namespace Ringvisor.Machine.Tests.Boot;

internal static class MultibootImages
{
    public const uint Magic = 0x1BADB002;
    public const uint AddressFlag = 1u << 16;

    /// <summary>A multiboot header (12 bytes, or 32 with the address fields) with a correct checksum unless told otherwise.</summary>
    public static byte[] Header(uint flags, uint headerAddr = 0, uint loadAddr = 0, uint loadEndAddr = 0, uint bssEndAddr = 0, uint entryAddr = 0,
        bool goodChecksum = true)
    {
        var h = new byte[(flags & AddressFlag) != 0 ? 32 : 12];
        BinaryPrimitives.WriteUInt32LittleEndian(h, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), unchecked(0u - Magic - flags + (goodChecksum ? 0u : 1u)));
        if (h.Length == 32)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(12), headerAddr);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(16), loadAddr);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(20), loadEndAddr);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(24), bssEndAddr);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(28), entryAddr);
        }

        return h;
    }

    /// <summary>ELF32 at 1 MiB: segment 0 = header (flags 0x3) + entry stub at 0x100010; 0x2000 bytes of bss after 0x1000 of file.</summary>
    public static ElfBuilder Elf(uint flags = 0x3, bool goodChecksum = true)
    {
        const uint Load = 0x100000;
        var text = new byte[0x1000];
        Header(flags, goodChecksum: goodChecksum).CopyTo(text, 0);
        GuestCode.ProtectedModeStub(Load + 0x10).CopyTo(text, 0x10);
        for (int i = 0x100; i < text.Length; i++)
        {
            text[i] = TempFiles.Pattern(i, 11);
        }

        return new ElfBuilder(is64: false) { Entry = Load + 0x10 }.Load(Load, text, memSize: 0x3000);
    }

    public const uint AoutLoad = 0x200000;
    public const uint AoutHeaderOffset = 0x40;
    public const uint AoutEntry = AoutLoad + 0x80;
    public const int AoutFileLength = 0x1800;
    public const uint AoutBssEnd = AoutLoad + 0x4000;

    /// <summary>A flat image loaded at 2 MiB through the address fields: header at file offset 0x40, entry at +0x80.</summary>
    public static byte[] Aout(uint flags = AddressFlag | 0x2, uint? loadEndAddr = null, uint bssEnd = AoutBssEnd, uint entry = AoutEntry,
        uint headerAddr = AoutLoad + AoutHeaderOffset, uint loadAddr = AoutLoad)
    {
        var image = new byte[AoutFileLength];
        for (int i = 0; i < image.Length; i++)
        {
            image[i] = TempFiles.Pattern(i, 5);
        }

        Header(flags, headerAddr, loadAddr, loadEndAddr ?? AoutLoad + (uint)AoutFileLength, bssEnd, entry).CopyTo(image, (int)AoutHeaderOffset);
        GuestCode.ProtectedModeStub(AoutEntry).CopyTo(image, 0x80);
        return image;
    }
}
