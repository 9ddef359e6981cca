// Read-modify-write operations shared by the plain and the LOCK-prefixed (atomic) paths.
namespace Ringvisor.Emulator.Instructions;

internal enum AluOp : byte
{
    Add,
    Or,
    Adc,
    Sbb,
    And,
    Sub,
    Xor,
    Cmp,
    Inc,
    Dec,
    Neg,
    Not,
    Xchg,
    Xadd,
    Bts,
    Btr,
    Btc,
}
