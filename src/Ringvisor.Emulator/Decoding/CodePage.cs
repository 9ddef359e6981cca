// Decoded instructions of one guest-physical page, decoded with IP = offset in page (see DecodeCache).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Iced.Intel;

namespace Ringvisor.Emulator.Decoding;

internal sealed class CodePage
{
    // Arrays grow by half (not double) from a small start: a page holds ~180 decoded instructions on average, and the
    // parallel arrays (Ops, UnitSlots) cost 48 bytes a slot, so doubling left a third of them empty.
    private const int InitialCapacity = 32;
    private const int InitialGenericCapacity = 8;

    public CodePage(ulong physPage, int bitness, int generation)
    {
        PhysPage = physPage;
        Bitness = bitness;
        Generation = generation;
    }

    public ulong PhysPage { get; }

    public int Bitness { get; }

    public int Generation { get; }

    // Slot + 1 of the instruction starting at each page offset (0 = not decoded yet), in 64-offset chunks allocated
    // when an instruction starting in them is decoded: a flat ushort[4096] cost 8 KiB a page (~7.5 MiB of a boot's
    // ~900 decoded pages) while a page's decoded code covers ~1 KiB of it on average.
    private const int ChunkShift = 6;
    private const int ChunkMask = (1 << ChunkShift) - 1;
    private readonly ushort[]?[] _slotChunks = new ushort[]?[4096 >> ChunkShift];

    /// <summary>Slot + 1 of the instruction starting at page offset <paramref name="offset"/>; 0 = not decoded yet.</summary>
    /// <remarks>The interpreter calls this for every instruction: <paramref name="offset"/> is a page offset (0-4095),
    /// so both indexes are in range and the bounds checks are skipped.</remarks>
    public int SlotAt(int offset)
    {
        var chunk = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_slotChunks), (nint)((uint)offset >> ChunkShift) & ((4096 >> ChunkShift) - 1));
        return chunk is null ? 0 : Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(chunk), (nint)(offset & ChunkMask));
    }

    /// <summary>Records that the instruction at <paramref name="offset"/> is in <paramref name="slot"/>.</summary>
    public void SetSlot(int offset, int slot) =>
        (_slotChunks[offset >> ChunkShift] ??= new ushort[1 << ChunkShift])[offset & ChunkMask] = (ushort)(slot + 1);

    /// <summary>Pre-decoded forms by slot. Iced's <see cref="Instruction"/> (40 bytes) is kept only for the Generic
    /// ones, in <see cref="GenericInstructions"/> at <see cref="FastOp.GenericIndex"/>: the fast forms carry all the
    /// interpreter needs, and a boot holds ~170,000 decoded instructions of which most are fast.</summary>
    public FastOp[] Ops = new FastOp[InitialCapacity];

    public Instruction[] GenericInstructions = new Instruction[InitialGenericCapacity];

    public int GenericCount;

    public int Count;

    /// <summary>The owning vCPU's fetch-page clock when it last switched to this page (Cpu.TrimDecodedPages evicts the
    /// least recently used pages).</summary>
    public long LastUse;

    /// <summary>Page offset of the cached instruction that continues on the next page (-1: none), with what it is valid
    /// for: the next page's physical page number and generation, and the MMU epoch of that translation.</summary>
    public int CrossingOffset = -1;
    public Instruction CrossingInstruction;
    public ulong CrossingPhysPage;
    public int CrossingGeneration;
    public long CrossingEpoch;

    /// <summary>Translation state per instruction, parallel to <see cref="Ops"/>; allocated when the translator first
    /// looks at the page (CpuTranslation.cs).</summary>
    public Translation.UnitSlot[]? UnitSlots;

    /// <summary>Slots allocated in <see cref="Ops"/> (and in <see cref="UnitSlots"/> once it exists).</summary>
    public int Capacity => Ops.Length;

    public int Add(in Instruction instruction)
    {
        if (Count == Ops.Length)
        {
            int size = Count + Math.Max(InitialCapacity, Count / 2);
            Array.Resize(ref Ops, size);
            if (UnitSlots is not null)
            {
                Array.Resize(ref UnitSlots, size);
            }
        }

        var op = Bitness == 64 ? FastOpBuilder.Build(instruction) : new FastOp { Length = (byte)instruction.Length };
        op.Offset = (ushort)(instruction.IP & 0xFFF);
        if (op.Kind == FastKind.Generic)
        {
            if (GenericCount == GenericInstructions.Length)
            {
                Array.Resize(ref GenericInstructions, GenericCount * 2);
            }

            op.GenericIndex = (ushort)GenericCount;
            GenericInstructions[GenericCount++] = instruction;
        }

        Ops[Count] = op;
        return Count++;
    }
}
