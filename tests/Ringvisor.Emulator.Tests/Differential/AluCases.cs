// ALU family: ADD OR ADC SBB AND SUB XOR CMP TEST INC DEC NEG NOT in every size (8-bit high registers included) and
// operand form (reg/reg, reg/imm, mem/reg, reg/mem, mem/imm). Undefined flags (SDM Vol. 2 per instruction): AF after
// AND/OR/XOR/TEST; everything else is defined (INC/DEC leave CF unchanged, which is compared).
using Iced.Intel;
using static Ringvisor.Emulator.Tests.Differential.DiffOperands;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class AluCases
{
    private static readonly string[] s_binary = ["Add", "Or", "Adc", "Sbb", "And", "Sub", "Xor", "Cmp", "Test"];
    private static readonly string[] s_unary = ["Inc", "Dec", "Neg", "Not"];

    public static IEnumerable<DiffCase> Random(int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var c = One(rng);
            c.Origin = $"AluCases.Random({seed}) #{i}";
            yield return c;
        }
    }

    /// <summary>Every binary op and size over edge operand pairs, CF clear and set.</summary>
    public static IEnumerable<DiffCase> Directed()
    {
        ulong[] edges = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, ulong.MaxValue];
        foreach (string op in s_binary)
        {
            foreach (int bits in DiffValues.Sizes)
            {
                foreach (ulong a in edges)
                {
                    foreach (ulong b in edges)
                    {
                        if ((a & ~DiffValues.Mask(bits)) != 0 || (b & ~DiffValues.Mask(bits)) != 0)
                        {
                            continue;
                        }

                        var ins = Instruction.Create(Code($"{op}_rm{bits}_r{bits}"), DiffValues.Gpr(0, bits), DiffValues.Gpr(3, bits));
                        var c = new DiffCase($"{op} {bits} {a:X},{b:X}", x => x.AddInstruction(ins));
                        c.Gpr[0] = a | 0xDEAD_0000_0000_0000 & ~DiffValues.Mask(bits);
                        c.Gpr[3] = b;
                        c.Flags = (a + b) % 3 == 0 ? DiffCase.Cf : 0;
                        c.UndefinedFlags = op is "And" or "Or" or "Xor" or "Test" ? DiffCase.Af : 0;
                        yield return c;
                    }
                }
            }
        }
    }

    private static DiffCase One(Random rng)
    {
        int bits = DiffValues.Sizes[rng.Next(4)];
        bool high = bits == 8 && rng.Next(2) == 0;
        bool unary = rng.Next(4) == 0;
        string op = unary ? s_unary[rng.Next(s_unary.Length)] : s_binary[rng.Next(s_binary.Length)];
        int form = unary ? rng.Next(2) : rng.Next(5); // unary: 0 reg, 1 mem
        if (op == "Test" && form == 3)
        {
            form = 2; // TEST has no r, r/m form
        }

        var c0 = new DiffCase("", _ => { });
        DiffValues.FillGprs(rng, c0);
        int d = Pick(rng, high);
        int s = Pick(rng, high);
        int b = Pick(rng, true, 4); // RAX..RDI but RSP: usable as a base next to AH..BH (no REX needed)

        Instruction ins;
        MemoryOperand mem() => DataOperand(rng, c0, b, bits / 8);
        Register rd = Reg(d, bits, high), rs = Reg(s, bits, high);
        if (unary)
        {
            ins = form == 0 ? Instruction.Create(Code($"{op}_rm{bits}"), rd) : Instruction.Create(Code($"{op}_rm{bits}"), mem());
        }
        else
        {
            switch (form)
            {
                case 0:
                    ins = Instruction.Create(Code($"{op}_rm{bits}_r{bits}"), rd, rs);
                    break;
                case 1:
                case 4:
                    {
                        int immBits = bits == 64 ? 32 : bits;
                        string code = $"{op}_rm{bits}_imm{immBits}";
                        if (bits > 8 && op != "Test" && rng.Next(2) == 0)
                        {
                            immBits = 8;
                            code = $"{op}_rm{bits}_imm8";
                        }

                        long imm = Imm(rng, immBits);
                        ins = form == 1 ? Instruction.Create(Code(code), rd, imm) : Instruction.Create(Code(code), mem(), (int)imm);
                        break;
                    }

                case 2:
                    ins = Instruction.Create(Code($"{op}_rm{bits}_r{bits}"), mem(), rs);
                    break;
                default:
                    ins = Instruction.Create(Code($"{op}_r{bits}_rm{bits}"), rd, mem());
                    break;
            }
        }

        var c = new DiffCase($"{op}{bits} form {form}", a => a.AddInstruction(ins));
        Array.Copy(c0.Gpr, c.Gpr, 16);
        c.Flags = DiffValues.NextFlags(rng);
        c.UndefinedFlags = op is "And" or "Or" or "Xor" or "Test" ? DiffCase.Af : 0;
        return c;
    }
}
