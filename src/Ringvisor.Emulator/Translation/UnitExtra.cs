// Forms the translator covers beyond the interpreter's FastKind set (those stay FastKind.Generic in the decode cache).
// Operands are kept in the FastOp fields: Dst/Src registers, Size, Imm (count or immediate), Aux (sub-operation).
namespace Ringvisor.Emulator.Translation;

internal enum UnitExtra : byte
{
    None,

    /// <summary>ROL/ROR r, imm8 (Aux 0 = ROL, 1 = ROR).</summary>
    RotateRI,

    /// <summary>NOT r.</summary>
    NotR,

    /// <summary>NEG r.</summary>
    NegR,

    /// <summary>SHL/SHR/SAR r, CL (Aux 0 = SHL, 1 = SHR, 2 = SAR).</summary>
    ShiftRCl,

    /// <summary>XCHG r, r (the memory form is locked and stays with the interpreter).</summary>
    XchgRR,

    /// <summary>CWDE/CDQE/CDQ/CQO (Aux: 0 CWDE, 1 CDQE, 2 CDQ, 3 CQO).</summary>
    SignExtendAcc,

    /// <summary>PUSH imm8/imm32 in 64-bit mode (sign-extended, 8 bytes).</summary>
    PushI,

    /// <summary>JMP r64 / JMP qword [mem] (Src = register, or the FastOp memory operand when Aux = 1).</summary>
    IndirectJmp,

    /// <summary>CALL r64 / CALL qword [mem] (operands as for IndirectJmp).</summary>
    IndirectCall,

    /// <summary>INC/DEC of a memory operand (Aux 0 = INC, 1 = DEC; Size and the FastOp memory operand).</summary>
    IncDecM,

    /// <summary>BSWAP r32/r64 (Dst, Size).</summary>
    Bswap,

    /// <summary>MUL/IMUL/DIV/IDIV r/m (one operand; Aux 0 MUL, 1 IMUL, 2 DIV, 3 IDIV; Size; the r/m operand in Src, or
    /// the FastOp memory operand when SrcSize = 1). #DE is left to the interpreter (Fallback).</summary>
    MulDiv,

    /// <summary>BSF/BSR/TZCNT/LZCNT r, r/m (Aux 0 forward, 1 reverse; Dst, Size; source as for MulDiv).</summary>
    BitScan,

    /// <summary>BT/BTS/BTR/BTC r/m, r/imm8 with the bit inside the operand (Aux 0 BT, 1 BTS, 2 BTR, 3 BTC, plus
    /// BitTestImmediate: offset in Imm, else in register Src; destination register Dst, or memory when SrcSize = 1).</summary>
    BitTest,

    /// <summary>CMPXCHG r/m, r (Dst or the memory operand when SrcSize = 1; Src; Size). A memory operand is done in
    /// host memory when the TLB allows a direct write, else by a helper call.</summary>
    Cmpxchg,

    /// <summary>XADD r/m, r (operands as for Cmpxchg).</summary>
    Xadd,

    /// <summary>SETcc m8 (condition in Aux, the memory operand).</summary>
    SetccM,

    /// <summary>XCHG m32/m64, r (either operand order; implicitly locked): Src, Size, the memory operand. An aligned
    /// operand the TLB allows a direct write to is exchanged with one host atomic, else by a helper call.</summary>
    XchgM,

    /// <summary>SHLD/SHRD r32/r64, r, imm8 (Aux 0 SHLD, 1 SHRD; Dst, Src, Size, count in Imm).</summary>
    ShiftDouble,

    /// <summary>8-bit MOV/TEST/ALU r8, r8/imm8 where a register is AH/CH/DH/BH (Aux = AluOp, or HighByteTest /
    /// HighByteMov; Dst, Src as full register numbers; SrcSize bits: HighDst, HighSrc, HighImmediate; Imm).</summary>
    AluHigh8,

    /// <summary>SSE moves and integer operations emitted as IL (UnitCompiler.Simd.cs; SseOp in Aux).</summary>
    Sse,

    /// <summary>
    /// Anything on UnitCompiler's helper list: run by the interpreter from inside the unit (registers and flags spilled
    /// around the call), as QEMU calls helpers for complex instructions. Aux-free; Imm = index in the helper table.
    /// </summary>
    Helper,
}
