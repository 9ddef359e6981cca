// Random straight-line sequences of 2-8 integer instructions (ALU, shifts by 1/imm, INC/DEC/NEG/NOT, MUL/IMUL, BT*,
// MOV/MOVZX/MOVSX/XCHG/LEA, CMOVcc/SETcc, ADC/SBB) over random registers: they exercise the interpreter's lazy flags
// across instructions. Which flags are undefined is tracked through the sequence: an instruction that reads an
// undefined flag (ADC/SBB/CMOVcc/SETcc/RCL...) is not generated while that flag is undefined, and the flags still
// undefined at the end are masked.
using Iced.Intel;
using static Ringvisor.Emulator.Tests.Differential.DiffOperands;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class SequenceCases
{
    private static readonly string[] s_alu = ["Add", "Or", "Adc", "Sbb", "And", "Sub", "Xor", "Cmp", "Test"];
    private static readonly string[] s_cc = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];

    public static IEnumerable<DiffCase> Random(int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var c = One(rng);
            c.Origin = $"SequenceCases.Random({seed}) #{i}";
            yield return c;
        }
    }

    /// <summary>The flags condition <paramref name="cc"/> reads (SDM Vol. 1 Table B-1).</summary>
    private static ulong Reads(string cc) => cc switch
    {
        "o" or "no" => DiffCase.Of,
        "b" or "ae" => DiffCase.Cf,
        "e" or "ne" => DiffCase.Zf,
        "be" or "a" => DiffCase.Cf | DiffCase.Zf,
        "s" or "ns" => DiffCase.Sf,
        "p" or "np" => DiffCase.Pf,
        "l" or "ge" => DiffCase.Sf | DiffCase.Of,
        _ => DiffCase.Zf | DiffCase.Sf | DiffCase.Of,
    };

    private static DiffCase One(Random rng)
    {
        var c = DiffCase.Randomized(rng);
        int length = rng.Next(2, 9);
        var list = new List<Instruction>();
        ulong undefined = 0;
        while (list.Count < length)
        {
            int bits = DiffValues.Sizes[1 + rng.Next(3)];
            int d = Pick(rng, false);
            int s = Pick(rng, false);
            Register rd = DiffValues.Gpr(d, bits), rs = DiffValues.Gpr(s, bits);
            int kind = rng.Next(10);
            Instruction ins;
            ulong reads = 0, writesDefined = 0, writesUndefined = 0;
            switch (kind)
            {
                case 0:
                case 1:
                case 2:
                    {
                        string op = s_alu[rng.Next(s_alu.Length)];
                        ins = rng.Next(2) == 0 || op == "Test" // TEST has no sign-extended imm8 form
                            ? Instruction.Create(Code($"{op}_rm{bits}_r{bits}"), rd, rs)
                            : Instruction.Create(Code($"{op}_rm{bits}_imm8"), rd, (int)(sbyte)rng.Next(256));

                        reads = op is "Adc" or "Sbb" ? DiffCase.Cf : 0;
                        writesDefined = op is "And" or "Or" or "Xor" or "Test" ? DiffCase.Arith & ~DiffCase.Af : DiffCase.Arith;
                        writesUndefined = op is "And" or "Or" or "Xor" or "Test" ? DiffCase.Af : 0;
                        break;
                    }

                case 3:
                    {
                        string op = new[] { "Inc", "Dec", "Neg", "Not" }[rng.Next(4)];
                        ins = Instruction.Create(Code($"{op}_rm{bits}"), rd);
                        writesDefined = op switch { "Not" => 0, "Neg" => DiffCase.Arith, _ => DiffCase.Arith & ~DiffCase.Cf };
                        break;
                    }

                case 4:
                    {
                        string op = new[] { "Shl", "Shr", "Sar", "Rol", "Ror", "Rcl", "Rcr" }[rng.Next(7)];
                        int n = rng.Next(3) == 0 ? 1 : rng.Next(2, bits);
                        ins = n == 1 ? Instruction.Create(Code($"{op}_rm{bits}_1"), rd, 1) : Instruction.Create(Code($"{op}_rm{bits}_imm8"), rd, n);
                        bool rotate = op.StartsWith('R');
                        reads = op is "Rcl" or "Rcr" ? DiffCase.Cf : 0;
                        writesDefined = rotate ? DiffCase.Cf | (n == 1 ? DiffCase.Of : 0) : (DiffCase.Arith & ~DiffCase.Af & ~DiffCase.Of) | (n == 1 ? DiffCase.Of : 0);
                        writesUndefined = (rotate ? 0 : DiffCase.Af) | (n == 1 ? 0 : DiffCase.Of);
                        break;
                    }

                case 5:
                    ins = rng.Next(2) == 0 ? Instruction.Create(Code($"Imul_r{bits}_rm{bits}"), rd, rs) : Instruction.Create(Code($"Bt_rm{bits}_r{bits}"), rd, rs);
                    writesDefined = ins.Mnemonic == Mnemonic.Imul ? DiffCase.Cf | DiffCase.Of : DiffCase.Cf;
                    writesUndefined = ins.Mnemonic == Mnemonic.Imul ? DiffCase.Sf | DiffCase.Zf | DiffCase.Af | DiffCase.Pf : DiffCase.Of | DiffCase.Sf | DiffCase.Af | DiffCase.Pf;
                    break;
                case 6:
                    {
                        string cc = s_cc[rng.Next(16)];
                        reads = Reads(cc);
                        ins = rng.Next(2) == 0
                            ? Instruction.Create(Code($"Cmov{cc}_r{bits}_rm{bits}"), rd, rs)
                            : Instruction.Create(Code($"Set{cc}_rm8"), DiffValues.Gpr(d, 8));
                        break;
                    }

                case 7:
                    ins = rng.Next(3) switch
                    {
                        0 => Instruction.Create(Code($"Mov_rm{bits}_r{bits}"), rd, rs),
                        1 => Instruction.Create(Iced.Intel.Code.Movzx_r32_rm8, DiffValues.Gpr(d, 32), DiffValues.Gpr(s, 8)),
                        _ => Instruction.Create(Code($"Xchg_rm{bits}_r{bits}"), rd, rs),
                    };
                    break;
                case 8:
                    ins = Instruction.Create(Code($"Lea_r{bits}_m"), rd, new MemoryOperand(DiffValues.Gpr64(s), DiffValues.Gpr64(Pick(rng, false)), 1 << rng.Next(4), rng.Next(-1000, 1000), 8));
                    break;
                default:
                    ins = Instruction.Create(Code($"Movsx_r{bits}_rm8"), rd, DiffValues.Gpr(s, 8));
                    break;
            }

            if ((reads & undefined) != 0)
            {
                continue;
            }

            undefined = (undefined & ~writesDefined) | writesUndefined;
            list.Add(ins);
        }

        c.UndefinedFlags = undefined;
        c.Name = $"sequence of {list.Count}";
        c.Body = a =>
        {
            foreach (var ins in list)
            {
                a.AddInstruction(ins);
            }
        };
        return c;
    }
}
