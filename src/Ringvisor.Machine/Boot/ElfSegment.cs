namespace Ringvisor.Machine.Boot;

/// <summary>One PT_LOAD program header, widened to 64 bits (ELF gABI, "Program Header").</summary>
internal readonly record struct ElfSegment(int Index, ulong Offset, ulong VirtualAddress, ulong PhysicalAddress, ulong FileSize, ulong MemorySize)
{
    public ulong PhysicalEnd => PhysicalAddress + MemorySize;
}
