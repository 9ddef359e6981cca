// One instruction of a unit being compiled: its page offset and length, the pre-decoded form and Iced's decoding.
using Iced.Intel;
using Ringvisor.Emulator.Decoding;

namespace Ringvisor.Emulator.Translation;

internal sealed class UnitInstruction
{
    public UnitInstruction(int offset, in Instruction instruction, in FastOp op, UnitExtra extra)
    {
        Offset = offset;
        Instruction = instruction;
        Op = op;
        Extra = extra;
    }

    /// <summary>The translator's own form when <see cref="Op"/> is Generic.</summary>
    public UnitExtra Extra { get; }

    public int Offset { get; }

    public int Length => Op.Length;

    public int NextOffset => Offset + Op.Length;

    public Instruction Instruction { get; }

    public FastOp Op;

    /// <summary>Page offset of a direct branch target (may lie outside the page), when the instruction has one.</summary>
    public long BranchTarget => NextOffset + (long)Op.Imm;
}
