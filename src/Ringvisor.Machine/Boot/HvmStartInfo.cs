// struct hvm_start_info version 1 and the structures it points to, as the PVH boot ABI defines them
// (xen/include/public/arch-x86/hvm/start_info.h; docs/misc/pvh.pandoc).
using System.Buffers.Binary;

namespace Ringvisor.Machine.Boot;

public static class HvmStartInfo
{
    public const uint Magic = 0x336E_C578;
    public const uint Version = 1;

    // struct hvm_start_info
    public const int MagicOffset = 0x00;
    public const int VersionOffset = 0x04;
    public const int FlagsOffset = 0x08;
    public const int NrModulesOffset = 0x0C;
    public const int ModlistPaddrOffset = 0x10;
    public const int CmdlinePaddrOffset = 0x18;
    public const int RsdpPaddrOffset = 0x20;
    public const int MemmapPaddrOffset = 0x28;
    public const int MemmapEntriesOffset = 0x30;
    public const int Size = 0x38;

    /// <summary>struct hvm_modlist_entry: paddr, size, cmdline_paddr, reserved (u64 each).</summary>
    public const int ModlistEntrySize = 32;

    /// <summary>struct hvm_memmap_table_entry: addr (u64), size (u64), type (u32, e820 values), reserved (u32).</summary>
    public const int MemmapEntrySize = 24;

    internal static void Write(BootMemoryPlan plan, ulong cmdline, IReadOnlyList<(ulong Address, ulong Size)> modules, IReadOnlyList<E820Entry> map, ulong rsdp)
    {
        Span<byte> page = new byte[BootLayout.BootInfoEnd - BootLayout.BootInfoAddress];
        BinaryPrimitives.WriteUInt32LittleEndian(page[MagicOffset..], Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(page[VersionOffset..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(page[NrModulesOffset..], (uint)modules.Count);
        BinaryPrimitives.WriteUInt64LittleEndian(page[ModlistPaddrOffset..], modules.Count == 0 ? 0 : BootLayout.BootInfoModulesAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(page[CmdlinePaddrOffset..], cmdline);
        BinaryPrimitives.WriteUInt64LittleEndian(page[RsdpPaddrOffset..], rsdp);
        BinaryPrimitives.WriteUInt64LittleEndian(page[MemmapPaddrOffset..], BootLayout.BootInfoMemoryMapAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(page[MemmapEntriesOffset..], (uint)map.Count);

        int modAt = (int)(BootLayout.BootInfoModulesAddress - BootLayout.BootInfoAddress);
        foreach (var (address, size) in modules)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(page[modAt..], address);
            BinaryPrimitives.WriteUInt64LittleEndian(page[(modAt + 8)..], size);
            modAt += ModlistEntrySize;
        }

        int mapAt = (int)(BootLayout.BootInfoMemoryMapAddress - BootLayout.BootInfoAddress);
        foreach (var e in map)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(page[mapAt..], e.Address);
            BinaryPrimitives.WriteUInt64LittleEndian(page[(mapAt + 8)..], e.Size);
            BinaryPrimitives.WriteUInt32LittleEndian(page[(mapAt + 16)..], (uint)e.Type);
            mapAt += MemmapEntrySize;
        }

        plan.Write(BootLayout.BootInfoAddress, page);
    }
}
