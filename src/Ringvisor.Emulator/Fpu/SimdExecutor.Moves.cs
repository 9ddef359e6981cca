using System.Runtime.Intrinsics;
using Iced.Intel;

namespace Ringvisor.Emulator.Fpu;

/// <summary>Data movement, shuffles and state instructions: MOVD/MOVQ, MOVDQA/U, MOVAPS/UPS/APD/UPD, MOVSS/SD,
/// MOVH/L*, MOVMSK*, MOV*DUP, MASKMOV*, SHUF*/UNPCK*, LDMXCSR/STMXCSR, EMMS, FXSAVE/FXRSTOR (SDM Vol. 2).</summary>
public static partial class SimdExecutor
{
    /// <summary>MXCSR DAZ bit (SDM Vol. 1 10.2.3.4).</summary>
    internal const uint MxcsrDaz = 1 << 6;

    private static Mnemonic[] MoveMnemonics =>
    [
        Mnemonic.Movd, Mnemonic.Movq, Mnemonic.Movdqa, Mnemonic.Movdqu, Mnemonic.Movaps, Mnemonic.Movups,
        Mnemonic.Movapd, Mnemonic.Movupd, Mnemonic.Lddqu, Mnemonic.Movntdq, Mnemonic.Movntps, Mnemonic.Movntpd,
        Mnemonic.Movntq, Mnemonic.Movss, Mnemonic.Movsd, Mnemonic.Movhps, Mnemonic.Movhpd, Mnemonic.Movlps,
        Mnemonic.Movlpd, Mnemonic.Movhlps, Mnemonic.Movlhps, Mnemonic.Movmskps, Mnemonic.Movmskpd,
        Mnemonic.Movddup, Mnemonic.Movshdup, Mnemonic.Movsldup, Mnemonic.Movq2dq, Mnemonic.Movdq2q,
        Mnemonic.Maskmovq, Mnemonic.Maskmovdqu, Mnemonic.Shufps, Mnemonic.Shufpd, Mnemonic.Unpcklps,
        Mnemonic.Unpckhps, Mnemonic.Unpcklpd, Mnemonic.Unpckhpd, Mnemonic.Ldmxcsr, Mnemonic.Stmxcsr, Mnemonic.Emms,
    ];

    private static SimdOutcome ExecuteMove(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        Vector128<byte> v;
        SimdOutcome r;
        switch (i.Mnemonic)
        {
            case Mnemonic.Movd:
            case Mnemonic.Movq:
            case Mnemonic.Movq2dq:
            case Mnemonic.Movdq2q:
            {
                r = Load(in i, 1, s, a, out v);
                if (r != SimdOutcome.Ok)
                {
                    return r;
                }

                // Destination XMM/MM/GPR gets the value zero-extended (SDM MOVD/MOVQ).
                var size = i.Mnemonic == Mnemonic.Movd ? 4 : 8;
                var low = v.AsUInt64().ToScalar();
                if (size == 4)
                {
                    low &= 0xFFFF_FFFF;
                }

                return Store(in i, 0, s, a, Vector128.CreateScalar(low).AsByte(), size);
            }

            case Mnemonic.Movdqa:
            case Mnemonic.Movdqu:
            case Mnemonic.Movaps:
            case Mnemonic.Movups:
            case Mnemonic.Movapd:
            case Mnemonic.Movupd:
            case Mnemonic.Lddqu:
            case Mnemonic.Movntdq:
            case Mnemonic.Movntps:
            case Mnemonic.Movntpd:
            case Mnemonic.Movntq:
                r = Load(in i, 1, s, a, out v);
                return r != SimdOutcome.Ok ? r : Store(in i, 0, s, a, v);

            case Mnemonic.Movss:
            case Mnemonic.Movsd:
            {
                var size = i.Mnemonic == Mnemonic.Movss ? 4 : 8;
                r = Load(in i, 1, s, a, out v);
                if (r != SimdOutcome.Ok)
                {
                    return r;
                }

                if (i.Op0Kind == OpKind.Register && i.Op1Kind == OpKind.Register)
                {
                    // Register to register merges the low element only.
                    var d = s.Xmm[i.Op0Register - Register.XMM0];
                    v = size == 4
                        ? d.AsUInt32().WithElement(0, v.AsUInt32().ToScalar()).AsByte()
                        : d.AsUInt64().WithElement(0, v.AsUInt64().ToScalar()).AsByte();
                }

                // A load from memory zero-extends (Load already did); a store writes size bytes.
                return Store(in i, 0, s, a, v, size);
            }

            case Mnemonic.Movhps:
            case Mnemonic.Movhpd:
            case Mnemonic.Movlps:
            case Mnemonic.Movlpd:
            case Mnemonic.Movhlps:
            case Mnemonic.Movlhps:
                return MoveHalf(in i, s, a);

            case Mnemonic.Movmskps:
            case Mnemonic.Movmskpd:
                r = Load(in i, 1, s, a, out v);
                if (r != SimdOutcome.Ok)
                {
                    return r;
                }

                a.WriteGpr(i.Op0Register, i.Mnemonic == Mnemonic.Movmskps
                    ? v.AsUInt32().ExtractMostSignificantBits()
                    : v.AsUInt64().ExtractMostSignificantBits());
                return SimdOutcome.Ok;

            case Mnemonic.Movddup:
                r = Load(in i, 1, s, a, out v);
                return r != SimdOutcome.Ok
                    ? r
                    : Store(in i, 0, s, a, Vector128.Create(v.AsUInt64().ToScalar()).AsByte());
            case Mnemonic.Movshdup:
                r = Load(in i, 1, s, a, out v);
                return r != SimdOutcome.Ok
                    ? r
                    : Store(in i, 0, s, a, Vector128.Shuffle(v.AsUInt32(), Vector128.Create(1u, 1, 3, 3)).AsByte());
            case Mnemonic.Movsldup:
                r = Load(in i, 1, s, a, out v);
                return r != SimdOutcome.Ok
                    ? r
                    : Store(in i, 0, s, a, Vector128.Shuffle(v.AsUInt32(), Vector128.Create(0u, 0, 2, 2)).AsByte());

            case Mnemonic.Maskmovq:
            case Mnemonic.Maskmovdqu:
                return MaskMove(in i, s, a);

            case Mnemonic.Shufps:
            case Mnemonic.Shufpd:
            case Mnemonic.Unpcklps:
            case Mnemonic.Unpckhps:
            case Mnemonic.Unpcklpd:
            case Mnemonic.Unpckhpd:
            {
                r = LoadPair(in i, s, a, out var dst, out var src);
                if (r != SimdOutcome.Ok)
                {
                    return r;
                }

                var imm = i.Immediate8;
                var d32 = dst.AsUInt32();
                var s32 = src.AsUInt32();
                var d64 = dst.AsUInt64();
                var s64 = src.AsUInt64();
                var result = i.Mnemonic switch
                {
                    Mnemonic.Shufps => Vector128.Create(d32.GetElement(imm & 3), d32.GetElement((imm >> 2) & 3),
                        s32.GetElement((imm >> 4) & 3), s32.GetElement((imm >> 6) & 3)).AsByte(),
                    Mnemonic.Shufpd => Vector128.Create(d64.GetElement(imm & 1), s64.GetElement((imm >> 1) & 1))
                        .AsByte(),
                    Mnemonic.Unpcklps => Vector128.Create(d32.GetElement(0), s32.GetElement(0), d32.GetElement(1),
                        s32.GetElement(1)).AsByte(),
                    Mnemonic.Unpckhps => Vector128.Create(d32.GetElement(2), s32.GetElement(2), d32.GetElement(3),
                        s32.GetElement(3)).AsByte(),
                    Mnemonic.Unpcklpd => Vector128.Create(d64.GetElement(0), s64.GetElement(0)).AsByte(),
                    _ => Vector128.Create(d64.GetElement(1), s64.GetElement(1)).AsByte(),
                };
                return Store(in i, 0, s, a, result);
            }

            case Mnemonic.Ldmxcsr:
            {
                r = LoadMemory(in i, a, 4, out v);
                if (r != SimdOutcome.Ok)
                {
                    return r;
                }

                var value = v.AsUInt32().ToScalar();
                if ((value & ~FpuState.MxcsrMask) != 0)
                {
                    return SimdOutcome.GeneralProtection;
                }

                s.Mxcsr = value;
                return SimdOutcome.Ok;
            }

            case Mnemonic.Stmxcsr:
                return Store(in i, 0, s, a, Vector128.CreateScalar(s.Mxcsr).AsByte(), 4);

            case Mnemonic.Emms:
                s.AbridgedTag = 0;
                return SimdOutcome.Ok;

            default:
                throw new InvalidOperationException($"Move dispatch missing {i.Mnemonic}.");
        }
    }

    private static SimdOutcome MoveHalf(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var r = Load(in i, 1, s, a, out var src);
        if (r != SimdOutcome.Ok)
        {
            return r;
        }

        var m = i.Mnemonic;
        if (i.Op0Kind == OpKind.Memory)
        {
            // Store form: MOVHPS/MOVHPD m64, xmm write the high quadword; MOVLPS/MOVLPD the low one.
            var q = m is Mnemonic.Movhps or Mnemonic.Movhpd ? src.AsUInt64().GetElement(1) : src.AsUInt64().ToScalar();
            return Store(in i, 0, s, a, Vector128.CreateScalar(q).AsByte(), 8);
        }

        var d = s.Xmm[i.Op0Register - Register.XMM0].AsUInt64();
        var result = m switch
        {
            Mnemonic.Movhps or Mnemonic.Movhpd or Mnemonic.Movlhps => d.WithElement(1, src.AsUInt64().ToScalar()),
            Mnemonic.Movhlps => d.WithElement(0, src.AsUInt64().GetElement(1)),
            _ => d.WithElement(0, src.AsUInt64().ToScalar()),
        };
        s.Xmm[i.Op0Register - Register.XMM0] = result.AsByte();
        return SimdOutcome.Ok;
    }

    /// <summary>MASKMOVQ/MASKMOVDQU: store the bytes whose mask byte has bit 7 set to DS:rDI; unselected bytes are
    /// not accessed.</summary>
    private static SimdOutcome MaskMove(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var r = Load(in i, 1, s, a, out var data);
        if (r != SimdOutcome.Ok)
        {
            return r;
        }

        r = Load(in i, 2, s, a, out var mask);
        if (r != SimdOutcome.Ok)
        {
            return r;
        }

        var w = i.Mnemonic == Mnemonic.Maskmovq ? 8 : 16;
        var address = a.GetMemoryAddress(in i);
        Span<byte> one = stackalloc byte[1];
        for (var k = 0; k < w; k++)
        {
            if ((mask.GetElement(k) & 0x80) != 0)
            {
                one[0] = data.GetElement(k);
                if (!a.WriteMemory(address + (ulong)k, one))
                {
                    return SimdOutcome.MemoryFaulted;
                }
            }
        }

        return SimdOutcome.Ok;
    }

    private static SimdOutcome ExecuteFxSaveRestore(in Instruction i, FpuState s, ISimdOperandAccess a)
    {
        var address = a.GetMemoryAddress(in i);
        if ((address & 15) != 0)
        {
            return SimdOutcome.GeneralProtection; // SDM FXSAVE/FXRSTOR: #GP(0) if not 16-byte aligned.
        }

        var rexW = i.Mnemonic is Mnemonic.Fxsave64 or Mnemonic.Fxrstor64;
        var xmmCount = a.Is64BitMode ? 16 : 8;
        Span<byte> image = stackalloc byte[FpuState.FxSaveSize];
        switch (i.Mnemonic)
        {
            case Mnemonic.Fxsave:
            case Mnemonic.Fxsave64:
            {
                // Only the architected part is written (through the last saved XMM register): the reserved and
                // software-available bytes after it, and XMM8-15 outside 64-bit mode, keep their memory contents.
                // One write, so a fault reports a write access and leaves memory untouched.
                s.FxSave(image, rexW, xmmCount);
                var length = 160 + (16 * xmmCount);
                return a.WriteMemory(address, image[..length]) ? SimdOutcome.Ok : SimdOutcome.MemoryFaulted;
            }

            case Mnemonic.Fxrstor:
            case Mnemonic.Fxrstor64:
                if (!a.ReadMemory(address, image))
                {
                    return SimdOutcome.MemoryFaulted;
                }

                return s.FxRstor(image, rexW, xmmCount) ? SimdOutcome.Ok : SimdOutcome.GeneralProtection;
            default:
                return SimdOutcome.InvalidOpcode;
        }
    }
}
