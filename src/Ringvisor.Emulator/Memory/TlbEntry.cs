// One TLB slot: a cached linear-page translation for one privilege class (see the design comment in Mmu.cs).
using System.Runtime.InteropServices;

namespace Ringvisor.Emulator.Memory;

/// <remarks>Padded to 64 bytes (56 used): translated code indexes the table at every memory access, and a power-of-two
/// size makes that a shift and a mask instead of a multiply and a sign extension.</remarks>
[StructLayout(LayoutKind.Sequential, Size = 64)]
internal struct TlbEntry
{
    /// <summary>Linear page base when reads may use the fast path; with <see cref="Mmu.TagSlow"/> set when they must take the slow path; <see cref="Mmu.TagInvalid"/> when not cached.</summary>
    public ulong ReadTag;
    public ulong WriteTag;
    public ulong ExecTag;

    /// <summary>Host address of a byte = linear address + HostAddend (RAM pages only).</summary>
    public nint HostAddend;

    /// <summary>Guest-physical base of the 4 KiB page.</summary>
    public ulong PhysicalPage;

    /// <summary>Linear base of the 4 KiB page this entry caches (a fragment of a large page when PageShift > 12).</summary>
    public ulong LinearPage;

    /// <summary><see cref="Mmu.EntryValid"/>, <see cref="Mmu.EntryGlobal"/>, <see cref="Mmu.EntryRam"/>.</summary>
    public uint Flags;

    /// <summary>log2 of the mapping's page size: 12, 21, 22 or 30.</summary>
    public int PageShift;
}
