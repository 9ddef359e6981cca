// One contiguous range of guest RAM backed by one host mapping.
namespace Ringvisor.Core.Memory;

/// <summary>A contiguous slice of guest-physical RAM and the host mapping that backs it.</summary>
/// <param name="Slot">Index of the region, used as the KVM memory slot number.</param>
/// <param name="GuestPhysicalAddress">First guest-physical address of the region.</param>
/// <param name="Size">Length in bytes (a multiple of 4 KiB).</param>
/// <param name="HostAddress">Host virtual address of the first byte.</param>
/// <param name="FirstPage">Index of this region's first page in the dirty bitmap.</param>
public sealed record MemoryRegion(int Slot, ulong GuestPhysicalAddress, ulong Size, nint HostAddress, ulong FirstPage)
{
    public ulong End => GuestPhysicalAddress + Size;

    public bool Contains(ulong gpa, ulong length) =>
        gpa >= GuestPhysicalAddress && length <= Size && gpa - GuestPhysicalAddress <= Size - length;
}
