using Iced.Intel;

namespace Ringvisor.Emulator.Fpu;

/// <summary>Routes a vector (MMX/SSE) instruction to its family.</summary>
public static partial class SimdExecutor
{
    private enum Family : byte
    {
        None,
        Integer,
        Move,
        Float,
        Sse41,
    }

    private static readonly Family[] s_family = BuildFamilyTable();

    private static Family[] BuildFamilyTable()
    {
        var table = new Family[Enum.GetValues<Mnemonic>().Length];
        foreach (var m in IntegerMnemonics)
        {
            table[(int)m] = Family.Integer;
        }

        foreach (var m in MoveMnemonics)
        {
            table[(int)m] = Family.Move;
        }

        foreach (var m in FloatMnemonics)
        {
            table[(int)m] = Family.Float;
        }

        foreach (var m in Sse41Mnemonics)
        {
            table[(int)m] = Family.Sse41;
        }

        return table;
    }

    private static IEnumerable<Mnemonic> ImplementedVectorMnemonics() =>
        IntegerMnemonics.Concat(MoveMnemonics).Concat(FloatMnemonics).Concat(Sse41Mnemonics);

    private static SimdOutcome ExecuteVector(in Instruction i, FpuState s, ISimdOperandAccess a) =>
        s_family[(int)i.Mnemonic] switch
        {
            Family.Integer => ExecuteInteger(in i, s, a),
            Family.Move => ExecuteMove(in i, s, a),
            Family.Float => ExecuteFloat(in i, s, a),
            Family.Sse41 => ExecuteSse41(in i, s, a),
            _ => SimdOutcome.InvalidOpcode,
        };
}
