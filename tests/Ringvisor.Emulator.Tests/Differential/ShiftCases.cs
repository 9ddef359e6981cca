// Shifts and rotates: SHL SHR SAR ROL ROR RCL RCR (count 1, imm8, CL; register and memory; every size, counts 0, 1,
// masked, above the operand size) and SHLD/SHRD. Undefined results (SDM Vol. 2B SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR,
// SHLD, SHRD): with a masked count of 0 nothing changes; otherwise AF is undefined after shifts, OF unless the masked
// count is 1, CF after SHL/SHR when the count is at least the operand size; SHLD/SHRD with a count above the operand
// size leave the destination and all flags undefined.
using Iced.Intel;
using static Ringvisor.Emulator.Tests.Differential.DiffOperands;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class ShiftCases
{
    private static readonly string[] s_ops = ["Shl", "Shr", "Sar", "Rol", "Ror", "Rcl", "Rcr", "Shld", "Shrd"];

    public static IEnumerable<DiffCase> Random(int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var c = One(rng);
            c.Origin = $"ShiftCases.Random({seed}) #{i}";
            yield return c;
        }
    }

    private static int NextCount(Random rng) => rng.Next(6) switch
    {
        0 => 0,
        1 => 1,
        2 => rng.Next(256), // masked to 5 or 6 bits by the CPU
        3 => 8 * rng.Next(1, 9), // the operand sizes and their multiples
        _ => rng.Next(1, 65),
    };

    private static DiffCase One(Random rng)
    {
        string op = s_ops[rng.Next(s_ops.Length)];
        bool dbl = op is "Shld" or "Shrd";
        int bits = dbl ? DiffValues.Sizes[1 + rng.Next(3)] : DiffValues.Sizes[rng.Next(4)];
        bool high = bits == 8 && rng.Next(2) == 0;
        var c = DiffCase.Randomized(rng);
        int d = high ? Pick(rng, high, 1, 5) : Pick(rng, high, 1); // neither CL nor CH: the count lives there
        int s = Pick(rng, false, 1, 4);
        int countForm = rng.Next(3); // 0: 1 (or imm8 for SHxD), 1: imm8, 2: CL
        int countValue = countForm == 0 && !dbl ? 1 : NextCount(rng);
        bool memory = rng.Next(4) == 0;
        int b = Pick(rng, true, 4, 1);
        Register rd = Reg(d, bits, high);
        c.Gpr[Home(d, bits, high)] = DiffValues.NextSized(rng, bits);
        if (countForm == 2)
        {
            c.Gpr[1] = ((ulong)rng.NextInt64() & ~0xFFUL) | (uint)countValue;
        }

        Instruction ins;
        if (dbl)
        {
            Register rs = DiffValues.Gpr(s, bits);
            string code = countForm == 2 ? $"{op}_rm{bits}_r{bits}_CL" : $"{op}_rm{bits}_r{bits}_imm8";
            ins = countForm == 2
                ? memory ? Instruction.Create(Code(code), DataOperand(rng, c, b, bits / 8), rs, Register.CL) : Instruction.Create(Code(code), rd, rs, Register.CL)
                : memory ? Instruction.Create(Code(code), DataOperand(rng, c, b, bits / 8), rs, countValue) : Instruction.Create(Code(code), rd, rs, countValue);
        }
        else
        {
            string code = countForm switch { 0 => $"{op}_rm{bits}_1", 1 => $"{op}_rm{bits}_imm8", _ => $"{op}_rm{bits}_CL" };
            ins = countForm switch
            {
                0 => memory ? Instruction.Create(Code(code), DataOperand(rng, c, b, bits / 8), 1) : Instruction.Create(Code(code), rd, 1),
                1 => memory ? Instruction.Create(Code(code), DataOperand(rng, c, b, bits / 8), countValue) : Instruction.Create(Code(code), rd, countValue),
                _ => memory ? Instruction.Create(Code(code), DataOperand(rng, c, b, bits / 8), Register.CL) : Instruction.Create(Code(code), rd, Register.CL),
            };
        }

        c.With(ins, $"{op}{bits} count {countValue}{(memory ? " mem" : "")}");
        int masked = countValue & (bits == 64 ? 0x3F : 0x1F);
        if (masked != 0)
        {
            ulong undefined = 0;
            if (op is "Shl" or "Shr" or "Sar" or "Shld" or "Shrd")
            {
                undefined |= DiffCase.Af;
            }

            if (masked != 1)
            {
                undefined |= DiffCase.Of;
            }

            if (op is "Shl" or "Shr" && masked >= bits)
            {
                undefined |= DiffCase.Cf;
            }

            if (dbl && masked > bits)
            {
                undefined |= DiffCase.Arith;
                if (memory)
                {
                    // The memory destination would be undefined, which the harness cannot mask: draw another case.
                    return One(rng);
                }

                c.UndefinedGprs |= 1 << d;
            }

            c.UndefinedFlags = undefined;
        }

        return c;
    }
}
