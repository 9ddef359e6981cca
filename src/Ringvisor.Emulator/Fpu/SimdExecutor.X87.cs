using Iced.Intel;

namespace Ringvisor.Emulator.Fpu;

/// <summary>x87 instructions.</summary>
public static partial class SimdExecutor
{
    private static Mnemonic[] X87Mnemonics => [];

    private static IEnumerable<Mnemonic> ImplementedX87Mnemonics() => X87Mnemonics;

    private static SimdOutcome ExecuteX87(in Instruction i, FpuState s, ISimdOperandAccess a) =>
        SimdOutcome.InvalidOpcode;
}
