// The SSE integer/move forms the translator emits itself (UnitExtra.Sse, in FastOp.Aux); everything else SSE stays a
// helper call into the interpreter (Fpu/SimdExecutor.cs, the reference semantics).
namespace Ringvisor.Emulator.Translation;

internal enum SseOp : byte
{
    /// <summary>MOVAPS/MOVAPD/MOVDQA/MOVUPS/MOVUPD/MOVDQU xmm, xmm/m128.</summary>
    Load,

    /// <summary>MOVAPS/MOVAPD/MOVDQA/MOVUPS/MOVUPD/MOVDQU m128, xmm (the register form decodes as Load).</summary>
    Store,

    Xor,
    Or,
    And,

    /// <summary>PANDN: NOT dst AND src.</summary>
    AndNot,
    CmpEqB,
    CmpEqW,
    CmpEqD,
    AddD,
    AddQ,
    SubQ,
    MinUB,

    /// <summary>PUNPCKLBW: the low eight bytes of dst and src interleaved (dst first).</summary>
    UnpackLowB,

    /// <summary>PUNPCKLQDQ: the low quadword of dst, then the low quadword of src.</summary>
    UnpackLowQ,

    /// <summary>PUNPCKLWD / PUNPCKLDQ: the low words / doublewords of dst and src interleaved (dst first).</summary>
    UnpackLowW,
    UnpackLowD,

    /// <summary>PUNPCKHBW / PUNPCKHWD / PUNPCKHDQ / PUNPCKHQDQ: the same with the high halves.</summary>
    UnpackHighB,
    UnpackHighW,
    UnpackHighD,
    UnpackHighQ,

    /// <summary>PSHUFB (SSSE3): byte i of the result is dst[src[i] &amp; 15], or 0 when bit 7 of src[i] is set.</summary>
    Pshufb,

    /// <summary>PSHUFD xmm, xmm/m128, imm8 (Imm low byte).</summary>
    Pshufd,

    /// <summary>MOVD/MOVQ xmm, r/m32|64 (Size 4 or 8): zero-extended to 128 bits.</summary>
    MovToXmm,

    /// <summary>MOVD/MOVQ r/m32|64, xmm (Size 4 or 8).</summary>
    MovFromXmm,

    /// <summary>MOVQ xmm, xmm/m64 (F3 0F 7E): the low quadword, upper cleared.</summary>
    MovqLoad,

    /// <summary>MOVQ xmm/m64, xmm (66 0F D6): to memory 8 bytes; to a register the low quadword, upper cleared.</summary>
    MovqStore,

    /// <summary>PMOVMSKB r32/r64, xmm.</summary>
    Pmovmskb,
}
