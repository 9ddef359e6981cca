// Decoded instructions of one guest-physical page, decoded with IP = offset in page (see DecodeCache).
using Iced.Intel;

namespace Ringvisor.Emulator.Decoding;

internal sealed class CodePage
{
    public CodePage(ulong physPage, int bitness, int generation)
    {
        PhysPage = physPage;
        Bitness = bitness;
        Generation = generation;
    }

    public ulong PhysPage { get; }

    public int Bitness { get; }

    public int Generation { get; }

    /// <summary>Slot + 1 of the instruction starting at each page offset; 0 = not decoded yet.</summary>
    public readonly ushort[] SlotByOffset = new ushort[4096];

    public Instruction[] Instructions = new Instruction[64];

    /// <summary>Pre-decoded fast forms, parallel to <see cref="Instructions"/>.</summary>
    public FastOp[] Ops = new FastOp[64];

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

    public int Add(in Instruction instruction)
    {
        if (Count == Instructions.Length)
        {
            Array.Resize(ref Instructions, Count * 2);
            Array.Resize(ref Ops, Count * 2);
            if (UnitSlots is not null)
            {
                Array.Resize(ref UnitSlots, Count * 2);
            }
        }

        Instructions[Count] = instruction;
        Ops[Count] = Bitness == 64 ? FastOpBuilder.Build(instruction) : new FastOp { Length = (byte)instruction.Length };
        return Count++;
    }
}
