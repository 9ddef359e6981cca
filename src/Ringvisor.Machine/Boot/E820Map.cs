// The guest's physical memory map, derived from the GuestMemory regions and the fixed PC holes. The same list feeds
// boot_params.e820_table, the multiboot mmap and the PVH memmap.
using Ringvisor.Core.Memory;

namespace Ringvisor.Machine.Boot;

public static class E820Map
{
    /// <summary>E820_MAX_ENTRIES_ZEROPAGE: the zero page holds at most 128 entries (zero-page.rst, 0x2D0).</summary>
    public const int MaxEntries = 128;

    /// <summary>
    /// RAM from 0 to the EBDA, the EBDA/VGA/BIOS hole reserved (it holds the MP table), RAM from 1 MiB to the end of
    /// the low region (the PCI hole or the end of memory), and each region above 4 GiB as RAM.
    /// </summary>
    public static IReadOnlyList<E820Entry> Build(GuestMemory memory) => Build(memory, []);

    /// <summary>
    /// The map of <see cref="Build(GuestMemory)"/> plus <paramref name="reserved"/> ranges outside RAM marked
    /// reserved (under kvm: the pages KVM uses for the real-mode TSS and the identity map, which lie in the PCI hole
    /// and would otherwise look free for PCI BARs to the guest).
    /// </summary>
    /// <exception cref="ArgumentException">A reserved range is empty, wraps, or overlaps RAM.</exception>
    public static IReadOnlyList<E820Entry> Build(GuestMemory memory, IReadOnlyList<(ulong Address, ulong Size)> reserved)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(reserved);
        var entries = new List<E820Entry>();
        foreach (var region in memory.Regions)
        {
            ulong start = region.GuestPhysicalAddress;
            ulong end = region.End;
            if (start < BootLayout.HighMemoryAddress)
            {
                ulong lowEnd = Math.Min(end, BootLayout.EbdaAddress);
                if (lowEnd > start)
                {
                    entries.Add(new E820Entry(start, lowEnd - start, E820Type.Ram));
                }

                ulong holeStart = Math.Max(start, BootLayout.EbdaAddress);
                entries.Add(new E820Entry(holeStart, BootLayout.HighMemoryAddress - holeStart, E820Type.Reserved));
                start = BootLayout.HighMemoryAddress;
            }

            if (end > start)
            {
                entries.Add(new E820Entry(start, end - start, E820Type.Ram));
            }
        }

        foreach (var (address, size) in reserved)
        {
            if (size == 0 || size > ulong.MaxValue - address)
            {
                throw new ArgumentException($"reserved range 0x{address:X}+0x{size:X} is empty or wraps", nameof(reserved));
            }

            foreach (var region in memory.Regions)
            {
                if (address < region.End && region.GuestPhysicalAddress < address + size)
                {
                    throw new ArgumentException($"reserved range 0x{address:X}+0x{size:X} overlaps guest RAM", nameof(reserved));
                }
            }

            entries.Add(new E820Entry(address, size, E820Type.Reserved));
        }

        entries.Sort((a, b) => a.Address.CompareTo(b.Address));
        if (entries.Count > MaxEntries)
        {
            throw new InvalidOperationException($"memory map has {entries.Count} entries; the zero page holds {MaxEntries}");
        }

        return entries;
    }
}
