// Hands out BAR addresses the way firmware would before the OS runs: memory BARs from the 32-bit PCI MMIO window
// (MemoryLayout.PciMmioBase), I/O BARs from 0xC000 up, each naturally aligned to its size (PCI 3.0 §6.2.5.1).
using Ringvisor.Core.Memory;

namespace Ringvisor.Devices.Pci;

public sealed class PciBarAllocator
{
    /// <summary>First I/O port handed to BARs: above the legacy ISA/PC range (as SeaBIOS does).</summary>
    public const ulong IoWindowBase = 0xC000;
    public const ulong IoWindowEnd = 0x1_0000;

    /// <summary>Memory BARs are page-aligned at least, so each BAR can be trapped or mapped on its own.</summary>
    private const ulong MinMemoryAlignment = MemoryLayout.PageSize;

    private ulong _nextMemory;
    private ulong _nextIo;

    public PciBarAllocator(ulong memoryBase = MemoryLayout.PciMmioBase, ulong memorySize = MemoryLayout.PciMmioSize)
    {
        MemoryBase = memoryBase;
        MemoryEnd = memoryBase + memorySize;
        _nextMemory = memoryBase;
        _nextIo = IoWindowBase;
    }

    public ulong MemoryBase { get; }

    public ulong MemoryEnd { get; }

    /// <exception cref="InvalidOperationException">The window is exhausted.</exception>
    public ulong Allocate(PciBarKind kind, ulong size)
    {
        if (kind == PciBarKind.Io)
        {
            ulong a = AlignUp(_nextIo, size);
            if (a + size > IoWindowEnd)
            {
                throw new InvalidOperationException($"PCI I/O window 0x{IoWindowBase:X}-0x{IoWindowEnd - 1:X} is full (BAR of {size} bytes)");
            }

            _nextIo = a + size;
            return a;
        }

        ulong align = Math.Max(size, MinMemoryAlignment);
        ulong m = AlignUp(_nextMemory, align);
        if (m + size > MemoryEnd)
        {
            throw new InvalidOperationException($"PCI memory window 0x{MemoryBase:X}-0x{MemoryEnd - 1:X} is full (BAR of 0x{size:X} bytes)");
        }

        _nextMemory = m + Math.Max(size, MinMemoryAlignment);
        return m;
    }

    private static ulong AlignUp(ulong v, ulong a) => (v + a - 1) & ~(a - 1);
}
