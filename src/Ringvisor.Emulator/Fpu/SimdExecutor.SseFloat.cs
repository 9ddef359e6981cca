using Iced.Intel;

namespace Ringvisor.Emulator.Fpu;

/// <summary>SSE/SSE2/SSE3 floating-point arithmetic, comparisons and conversions.</summary>
public static partial class SimdExecutor
{
    private static Mnemonic[] FloatMnemonics => [];

    private static SimdOutcome ExecuteFloat(in Instruction i, FpuState s, ISimdOperandAccess a) =>
        SimdOutcome.InvalidOpcode;
}
