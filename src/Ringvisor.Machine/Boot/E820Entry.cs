namespace Ringvisor.Machine.Boot;

/// <summary>One range of the guest's physical memory map, as e820, multiboot mmap and the PVH memmap describe it.</summary>
public readonly record struct E820Entry(ulong Address, ulong Size, E820Type Type)
{
    public ulong End => Address + Size;
}
