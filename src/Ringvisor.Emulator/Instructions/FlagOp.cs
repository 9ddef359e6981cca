// Which operation last set the arithmetic flags, for lazy flag evaluation.
namespace Ringvisor.Emulator.Instructions;

internal enum FlagOp : byte
{
    /// <summary>The arithmetic flags are materialised in the flags word.</summary>
    None,
    Add,
    Adc,
    Sub,
    Sbb,
    Logic,
    Inc,
    Dec,
    Neg,
    Shl,
    Shr,
    Sar,
}
