// MUL, IMUL (one, two and three operands), DIV, IDIV in every size, register and memory operands, including #DE
// (divide by zero, quotient overflow, INT_MIN / -1). SDM Vol. 2: after MUL/IMUL SF ZF AF PF are undefined; after
// DIV/IDIV all six status flags are undefined (a #DE leaves them as they were, and the frame is compared).
using Iced.Intel;
using static Ringvisor.Emulator.Tests.Differential.DiffOperands;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class MulDivCases
{
    public static IEnumerable<DiffCase> Random(int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var c = One(rng);
            c.Origin = $"MulDivCases.Random({seed}) #{i}";
            yield return c;
        }
    }

    private static DiffCase One(Random rng)
    {
        var c = DiffCase.Randomized(rng);
        int kind = rng.Next(7); // 0 mul, 1 imul1, 2 imul2, 3 imul3, 4-5 div, 6 idiv
        int bits = kind is 2 or 3 ? DiffValues.Sizes[1 + rng.Next(3)] : DiffValues.Sizes[rng.Next(4)];
        bool high = bits == 8 && kind is not (2 or 3) && rng.Next(3) == 0;
        bool memory = rng.Next(4) == 0;
        int b = Pick(rng, true, 4, 0, 2);
        int s = Pick(rng, high, 0, 2);
        Register rs = Reg(s, bits, high);
        MemoryOperand Mem() => DataOperand(rng, c, b, bits / 8);
        Instruction ins;
        switch (kind)
        {
            case 0:
            case 1:
                {
                    string code = (kind == 0 ? "Mul" : "Imul") + $"_rm{bits}";
                    ins = memory ? Instruction.Create(Code(code), Mem()) : Instruction.Create(Code(code), rs);
                    c.UndefinedFlags = DiffCase.Sf | DiffCase.Zf | DiffCase.Af | DiffCase.Pf;
                    break;
                }

            case 2:
                {
                    int d = Pick(rng, false);
                    string code = $"Imul_r{bits}_rm{bits}";
                    ins = memory ? Instruction.Create(Code(code), DiffValues.Gpr(d, bits), Mem()) : Instruction.Create(Code(code), DiffValues.Gpr(d, bits), DiffValues.Gpr(s, bits));
                    c.UndefinedFlags = DiffCase.Sf | DiffCase.Zf | DiffCase.Af | DiffCase.Pf;
                    break;
                }

            case 3:
                {
                    int d = Pick(rng, false);
                    bool imm8 = rng.Next(2) == 0;
                    int immBits = imm8 ? 8 : bits == 16 ? 16 : 32;
                    string code = $"Imul_r{bits}_rm{bits}_imm{immBits}";
                    int imm = (int)Imm(rng, immBits);
                    ins = memory ? Instruction.Create(Code(code), DiffValues.Gpr(d, bits), Mem(), imm) : Instruction.Create(Code(code), DiffValues.Gpr(d, bits), DiffValues.Gpr(s, bits), imm);
                    c.UndefinedFlags = DiffCase.Sf | DiffCase.Zf | DiffCase.Af | DiffCase.Pf;
                    break;
                }

            default:
                {
                    bool signed = kind == 6;
                    string code = (signed ? "Idiv" : "Div") + $"_rm{bits}";
                    c.UndefinedFlags = DiffCase.Arith;
                    ulong divisor = rng.Next(4) switch
                    {
                        0 => 0,
                        1 => signed ? DiffValues.Mask(bits) : 1, // -1 or 1
                        _ => DiffValues.NextSized(rng, bits),
                    };

                    // Mostly no overflow: the high half of the dividend below the divisor (unsigned).
                    ulong high64 = rng.Next(3) == 0 ? DiffValues.Next(rng) : (ulong)rng.NextInt64() % Math.Max(1, divisor & DiffValues.Mask(bits));
                    if (signed && rng.Next(3) == 0)
                    {
                        // Sign-extended dividends: INT_MIN / -1 and ordinary signed cases.
                        ulong low = rng.Next(2) == 0 ? 1UL << (bits - 1) : DiffValues.NextSized(rng, bits);
                        high64 = (low & (1UL << (bits - 1))) != 0 ? ulong.MaxValue : 0;
                        SetDividendLow(c, bits, low);
                    }

                    SetDividendHigh(c, bits, high64);
                    if (memory)
                    {
                        var m = Mem();
                        int offset = (int)(c.Gpr[b] + (ulong)(long)m.Displacement - DiffLayout.Data);
                        c.PrepareData = data =>
                        {
                            for (int i = 0; i < bits / 8; i++)
                            {
                                data[offset + i] = (byte)(divisor >> (8 * i));
                            }
                        };
                        ins = Instruction.Create(Code(code), m);
                    }
                    else
                    {
                        if (high && s >= 4)
                        {
                            c.Gpr[s - 4] = (c.Gpr[s - 4] & ~0xFF00UL) | ((divisor & 0xFF) << 8);
                        }
                        else
                        {
                            c.Gpr[s] = (c.Gpr[s] & ~DiffValues.Mask(bits)) | (divisor & DiffValues.Mask(bits));
                        }

                        ins = Instruction.Create(Code(code), rs);
                    }

                    break;
                }
        }

        return c.With(ins, $"{ins.Mnemonic}{bits}{(memory ? " mem" : "")}");
    }

    private static void SetDividendLow(DiffCase c, int bits, ulong low)
    {
        ulong m = DiffValues.Mask(bits);
        c.Gpr[0] = (c.Gpr[0] & ~m) | (low & m);
    }

    private static void SetDividendHigh(DiffCase c, int bits, ulong high)
    {
        if (bits == 8)
        {
            c.Gpr[0] = (c.Gpr[0] & ~0xFF00UL) | ((high & 0xFF) << 8); // AH
        }
        else
        {
            ulong m = DiffValues.Mask(bits);
            c.Gpr[2] = (c.Gpr[2] & ~m) | (high & m);
        }
    }
}
