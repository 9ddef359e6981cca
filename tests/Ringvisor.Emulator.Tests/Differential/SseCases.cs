// SSE/SSE2 (and the SSSE3 PSHUFB/PALIGNR the interpreter advertises): float arithmetic, sqrt, min/max, compares,
// conversions with every MXCSR rounding mode, FTZ/DAZ and (sometimes) unmasked exceptions (#XM, vector 19), logic,
// shuffles/unpacks, and integer SIMD (add/sub with saturation, compares, shifts, packs, multiplies, PMOVMSKB,
// PSHUFD, PSHUFB, PALIGNR...). Operands are XMM registers, GPRs or 16-byte-aligned memory in the data pages. Every result these instructions define is exact, so all XMM registers and MXCSR are
// compared.
using Iced.Intel;
using static Ringvisor.Emulator.Tests.Differential.DiffOperands;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class SseCases
{
    private static readonly string[] s_codes =
    [
        // Float arithmetic (packed/scalar, single/double).
        "Addps_xmm_xmmm128", "Addpd_xmm_xmmm128", "Addss_xmm_xmmm32", "Addsd_xmm_xmmm64",
        "Subps_xmm_xmmm128", "Subpd_xmm_xmmm128", "Subss_xmm_xmmm32", "Subsd_xmm_xmmm64",
        "Mulps_xmm_xmmm128", "Mulpd_xmm_xmmm128", "Mulss_xmm_xmmm32", "Mulsd_xmm_xmmm64",
        "Divps_xmm_xmmm128", "Divpd_xmm_xmmm128", "Divss_xmm_xmmm32", "Divsd_xmm_xmmm64",
        "Sqrtps_xmm_xmmm128", "Sqrtpd_xmm_xmmm128", "Sqrtss_xmm_xmmm32", "Sqrtsd_xmm_xmmm64",
        "Minps_xmm_xmmm128", "Maxpd_xmm_xmmm128", "Minss_xmm_xmmm32", "Maxsd_xmm_xmmm64",
        "Rcpps_xmm_xmmm128", "Rsqrtss_xmm_xmmm32",
        "Addsubps_xmm_xmmm128", "Haddpd_xmm_xmmm128", "Hsubps_xmm_xmmm128",

        // Compares.
        "Cmpps_xmm_xmmm128_imm8", "Cmppd_xmm_xmmm128_imm8", "Cmpss_xmm_xmmm32_imm8", "Cmpsd_xmm_xmmm64_imm8",
        "Comiss_xmm_xmmm32", "Ucomiss_xmm_xmmm32", "Comisd_xmm_xmmm64", "Ucomisd_xmm_xmmm64",

        // Conversions.
        "Cvtsi2ss_xmm_rm32", "Cvtsi2ss_xmm_rm64", "Cvtsi2sd_xmm_rm32", "Cvtsi2sd_xmm_rm64",
        "Cvtss2si_r32_xmmm32", "Cvtss2si_r64_xmmm32", "Cvttss2si_r32_xmmm32", "Cvttsd2si_r64_xmmm64", "Cvtsd2si_r32_xmmm64",
        "Cvtss2sd_xmm_xmmm32", "Cvtsd2ss_xmm_xmmm64", "Cvtps2pd_xmm_xmmm64", "Cvtpd2ps_xmm_xmmm128",
        "Cvtdq2ps_xmm_xmmm128", "Cvtps2dq_xmm_xmmm128", "Cvttps2dq_xmm_xmmm128", "Cvtdq2pd_xmm_xmmm64",
        "Cvtpd2dq_xmm_xmmm128", "Cvttpd2dq_xmm_xmmm128",

        // Logic, shuffles, moves.
        "Andps_xmm_xmmm128", "Andnpd_xmm_xmmm128", "Orps_xmm_xmmm128", "Xorpd_xmm_xmmm128",
        "Shufps_xmm_xmmm128_imm8", "Shufpd_xmm_xmmm128_imm8", "Unpcklps_xmm_xmmm128", "Unpckhpd_xmm_xmmm128",
        "Movhlps_xmm_xmm", "Movlhps_xmm_xmm", "Movss_xmm_xmmm32", "Movsd_xmm_xmmm64", "Movmskps_r32_xmm", "Movmskpd_r32_xmm",
        "Movd_xmm_rm32", "Movq_xmm_rm64", "Movd_rm32_xmm", "Movq_rm64_xmm", "Movq_xmm_xmmm64",
        "Movdqa_xmm_xmmm128", "Movdqu_xmm_xmmm128", "Movdqu_xmmm128_xmm", "Movsldup_xmm_xmmm128", "Movddup_xmm_xmmm64",
        "Movaps_xmm_xmmm128", "Movaps_xmmm128_xmm", "Movapd_xmm_xmmm128", "Movdqa_xmmm128_xmm", "Movups_xmm_xmmm128",
        "Movups_xmmm128_xmm", "Movq_xmmm64_xmm", "Xorps_xmm_xmmm128", "Pmovmskb_r64_xmm",

        // Integer SIMD.
        "Paddb_xmm_xmmm128", "Paddw_xmm_xmmm128", "Paddd_xmm_xmmm128", "Paddq_xmm_xmmm128",
        "Psubb_xmm_xmmm128", "Psubw_xmm_xmmm128", "Psubd_xmm_xmmm128", "Psubq_xmm_xmmm128",
        "Paddsb_xmm_xmmm128", "Paddusw_xmm_xmmm128", "Psubsw_xmm_xmmm128", "Psubusb_xmm_xmmm128",
        "Pcmpeqb_xmm_xmmm128", "Pcmpeqw_xmm_xmmm128", "Pcmpeqd_xmm_xmmm128", "Pcmpgtb_xmm_xmmm128", "Pcmpgtd_xmm_xmmm128",
        "Pmovmskb_r32_xmm", "Pshufd_xmm_xmmm128_imm8", "Pshuflw_xmm_xmmm128_imm8", "Pshufhw_xmm_xmmm128_imm8",
        "Pshufb_xmm_xmmm128", "Palignr_xmm_xmmm128_imm8",
        "Punpcklbw_xmm_xmmm128", "Punpckhbw_xmm_xmmm128", "Punpcklwd_xmm_xmmm128", "Punpckhdq_xmm_xmmm128",
        "Punpcklqdq_xmm_xmmm128", "Punpckhqdq_xmm_xmmm128",
        "Packsswb_xmm_xmmm128", "Packuswb_xmm_xmmm128", "Packssdw_xmm_xmmm128",
        "Psrlw_xmm_imm8", "Psrld_xmm_imm8", "Psrlq_xmm_imm8", "Psllw_xmm_imm8", "Pslld_xmm_imm8", "Psllq_xmm_imm8",
        "Psraw_xmm_imm8", "Psrad_xmm_imm8", "Psrldq_xmm_imm8", "Pslldq_xmm_imm8",
        "Psrlw_xmm_xmmm128", "Pslld_xmm_xmmm128", "Psrlq_xmm_xmmm128", "Psraw_xmm_xmmm128",
        "Pmullw_xmm_xmmm128", "Pmulhw_xmm_xmmm128", "Pmulhuw_xmm_xmmm128", "Pmuludq_xmm_xmmm128", "Pmaddwd_xmm_xmmm128",
        "Pavgb_xmm_xmmm128", "Pminub_xmm_xmmm128", "Pmaxsw_xmm_xmmm128", "Psadbw_xmm_xmmm128",
        "Pand_xmm_xmmm128", "Pandn_xmm_xmmm128", "Por_xmm_xmmm128", "Pxor_xmm_xmmm128",
        "Pextrw_r32_xmm_imm8", "Pinsrw_xmm_r32m16_imm8", "Pabsb_xmm_xmmm128", "Phaddw_xmm_xmmm128", "Pmulhrsw_xmm_xmmm128",
        "Psignd_xmm_xmmm128", "Pmaddubsw_xmm_xmmm128",
    ];

    private static readonly uint[] s_f32 =
    [
        0, 0x8000_0000, 0x3F80_0000, 0xBF80_0000, 0x3FC0_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0000,
        0x7FA0_0000, 0x0000_0001, 0x007F_FFFF, 0x8000_0001, 0x7F7F_FFFF, 0x0080_0000, 0x4040_0000, 0x3DCC_CCCD,
        0x4F00_0000, 0xCF00_0000, 0x5F00_0000, 0x4EFF_FFFF, 0x3F00_0000, 0x3EFF_FFFF, 0x4B7F_FFFF,
    ];

    /// <summary>Doubles at the edges: zeros, ones, infinities, NaNs (quiet, signalling), denormals, extremes, halfway cases.</summary>
    public static IReadOnlyList<ulong> Doubles => s_f64;

    private static readonly ulong[] s_f64 =
    [
        0, 0x8000_0000_0000_0000, 0x3FF0_0000_0000_0000, 0xBFF0_0000_0000_0000, 0x7FF0_0000_0000_0000,
        0xFFF0_0000_0000_0000, 0x7FF8_0000_0000_0000, 0x7FF4_0000_0000_0000, 0x0000_0000_0000_0001,
        0x000F_FFFF_FFFF_FFFF, 0x7FEF_FFFF_FFFF_FFFF, 0x0010_0000_0000_0000, 0x3FB9_9999_9999_999A,
        0x41E0_0000_0000_0000, 0xC1E0_0000_0000_0000, 0x43E0_0000_0000_0000, 0x3FE0_0000_0000_0000,
        0x4330_0000_0000_0001, 0x36A0_0000_0000_0000, 0x47EF_FFFF_E000_0000,
    ];

    public static IEnumerable<DiffCase> Random(int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var c = One(rng);
            c.Origin = $"SseCases.Random({seed}) #{i}";
            yield return c;
        }
    }

    public static UInt128 NextXmm(Random rng)
    {
        UInt128 v = 0;
        switch (rng.Next(4))
        {
            case 0:
                for (int i = 0; i < 4; i++)
                {
                    uint lane = rng.Next(3) == 0 ? (uint)rng.Next() ^ ((uint)rng.Next(2) << 31) : s_f32[rng.Next(s_f32.Length)];
                    v |= (UInt128)lane << (32 * i);
                }

                break;
            case 1:
                for (int i = 0; i < 2; i++)
                {
                    ulong lane = rng.Next(3) == 0 ? (ulong)rng.NextInt64() ^ ((ulong)rng.Next(2) << 63) : s_f64[rng.Next(s_f64.Length)];
                    v |= (UInt128)lane << (64 * i);
                }

                break;
            default:
                v = ((UInt128)DiffValues.Next(rng) << 64) | DiffValues.Next(rng);
                break;
        }

        return v;
    }

    public static uint NextMxcsr(Random rng)
    {
        uint m = 0x1F80u | ((uint)rng.Next(4) << 13); // all masked, random rounding (SDM Vol. 1 §10.2.3)
        if (rng.Next(4) == 0)
        {
            m |= 1u << 15; // FTZ
        }

        if (rng.Next(4) == 0)
        {
            m |= 1u << 6; // DAZ
        }

        if (rng.Next(8) == 0)
        {
            m &= ~((uint)rng.Next(64) << 7); // some exceptions unmasked: #XM when they occur
        }

        if (rng.Next(4) == 0)
        {
            m |= (uint)rng.Next(64); // sticky flags already set
        }

        return m;
    }

    private static DiffCase One(Random rng)
    {
        var c = DiffCase.Randomized(rng);
        for (int i = 0; i < 16; i++)
        {
            c.SetXmm(i, NextXmm(rng));
        }

        c.SetMxcsr(NextMxcsr(rng));
        var code = Code(s_codes[rng.Next(s_codes.Length)]);
        var info = code.ToOpCode();
        var ops = new object[info.OpCount];
        int b = Pick(rng, true, 4);
        for (int i = 0; i < info.OpCount; i++)
        {
            ops[i] = info.GetOpKind(i) switch
            {
                OpCodeOperandKind.xmm_reg or OpCodeOperandKind.xmm_rm => Register.XMM0 + rng.Next(16),
                OpCodeOperandKind.xmm_or_mem => rng.Next(4) == 0 ? SseMemory(rng, c, b) : Register.XMM0 + rng.Next(16),
                OpCodeOperandKind.r32_or_mem => rng.Next(4) == 0 ? SseMemory(rng, c, b) : DiffValues.Gpr(Pick(rng, false, b), 32),
                OpCodeOperandKind.r64_or_mem => rng.Next(4) == 0 ? SseMemory(rng, c, b) : DiffValues.Gpr(Pick(rng, false, b), 64),
                OpCodeOperandKind.r32_or_mem_mpx => DiffValues.Gpr(Pick(rng, false, b), 32),
                OpCodeOperandKind.r32_reg or OpCodeOperandKind.r32_rm => DiffValues.Gpr(Pick(rng, false, b), 32),
                OpCodeOperandKind.r64_reg or OpCodeOperandKind.r64_rm => DiffValues.Gpr(Pick(rng, false, b), 64),
                OpCodeOperandKind.imm8 => (object)rng.Next(256),
                var k => throw new InvalidOperationException($"{code}: operand kind {k} not handled"),
            };
        }

        if (code.ToString().StartsWith("Cvtsi2", StringComparison.Ordinal) && ops[1] is Register gr)
        {
            // Integer sources around the float precision limits.
            c.Gpr[gr.GetFullRegister() - Register.RAX] = DiffValues.Next(rng);
        }

        var ins = ops switch
        {
            [Register r0, Register r1] => Instruction.Create(code, r0, r1),
            [Register r0, MemoryOperand m1] => Instruction.Create(code, r0, m1),
            [MemoryOperand m0, Register r1] => Instruction.Create(code, m0, r1),
            [Register r0, int i1] => Instruction.Create(code, r0, i1),
            [Register r0, Register r1, int i2] => Instruction.Create(code, r0, r1, i2),
            [Register r0, MemoryOperand m1, int i2] => Instruction.Create(code, r0, m1, i2),
            _ => throw new InvalidOperationException($"{code}: operand shape not handled"),
        };
        return c.With(ins, code.ToString());
    }

    /// <summary>
    /// A 16-byte-aligned memory operand in the data pages. Misaligned 128-bit operands (#GP(0)) are not generated:
    /// on this host KVM re-examines a #GP raised by guest CPL-3 code with its instruction emulator, which reports #UD
    /// for most SSE instructions; ExceptionCases keeps a MOVAPS case, which it handles.
    /// </summary>
    private static MemoryOperand SseMemory(Random rng, DiffCase c, int baseIndex)
    {
        ulong target = DiffLayout.Data + 0x1000 + (ulong)(rng.Next(0x100) * 16);
        int disp = rng.Next(2) == 0 ? 0 : rng.Next(-8, 8) * 16;
        c.Gpr[baseIndex] = target - (ulong)(long)disp;
        return new MemoryOperand(DiffValues.Gpr64(baseIndex), disp);
    }
}
