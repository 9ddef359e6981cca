// CMOVcc, SETcc and Jcc (short and near) for all 16 conditions over random flag combinations, plus JRCXZ/JECXZ and
// LOOP/LOOPE/LOOPNE. None of them changes a flag.
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Ringvisor.Emulator.Tests.Differential.DiffOperands;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class CondCases
{
    private static readonly string[] s_cc = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];

    public static IEnumerable<DiffCase> Random(int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var c = One(rng);
            c.Origin = $"CondCases.Random({seed}) #{i}";
            yield return c;
        }
    }

    /// <summary>
    /// LOOP/LOOPE/LOOPNE/JRCXZ over the counts where the decrement matters (0, 1, 2, 2^32 + 1) and both ZF values:
    /// the regression cases for LOOPE/LOOPNE, which the fast pre-decoded forms once ran as plain JE/JNE.
    /// </summary>
    public static IEnumerable<DiffCase> DirectedLoops()
    {
        ulong[] counts = [0, 1, 2, 0x1_0000_0001];
        for (int which = 0; which < 4; which++)
        {
            foreach (ulong count in counts)
            {
                foreach (ulong zf in new[] { 0UL, DiffCase.Zf })
                {
                    int w = which;
                    var c = new DiffCase($"{(w switch { 0 => "jrcxz", 1 => "loop", 2 => "loope", _ => "loopne" })} rcx={count:X} zf={zf >> 6}", a =>
                    {
                        var taken = a.CreateLabel();
                        var end = a.CreateLabel();
                        switch (w)
                        {
                            case 0: a.jrcxz(taken); break;
                            case 1: a.loop(taken); break;
                            case 2: a.loope(taken); break;
                            default: a.loopne(taken); break;
                        }

                        a.mov(r15d, 1);
                        a.jmp(end);
                        a.Label(ref taken);
                        a.mov(r15d, 2);
                        a.Label(ref end);
                    });
                    c.Gpr[1] = count;
                    c.Flags = zf;
                    yield return c;
                }
            }
        }
    }

    private static DiffCase One(Random rng)
    {
        var c = DiffCase.Randomized(rng);
        string cc = s_cc[rng.Next(16)];
        int d = Pick(rng, false);
        int s = Pick(rng, false, d);
        int b = Pick(rng, true, 4, d, s);
        switch (rng.Next(4))
        {
            case 0:
                {
                    int bits = DiffValues.Sizes[1 + rng.Next(3)];
                    bool memory = rng.Next(3) == 0;
                    var ins = memory
                        ? Instruction.Create(Code($"Cmov{cc}_r{bits}_rm{bits}"), DiffValues.Gpr(d, bits), DataOperand(rng, c, b, bits / 8))
                        : Instruction.Create(Code($"Cmov{cc}_r{bits}_rm{bits}"), DiffValues.Gpr(d, bits), DiffValues.Gpr(s, bits));
                    return c.With(ins, $"cmov{cc}{bits}{(memory ? " mem" : "")}");
                }

            case 1:
                {
                    bool high = rng.Next(2) == 0;
                    int r = Pick(rng, high);
                    bool memory = rng.Next(3) == 0;
                    var ins = memory
                        ? Instruction.Create(Code($"Set{cc}_rm8"), DataOperand(rng, c, b, 1))
                        : Instruction.Create(Code($"Set{cc}_rm8"), Reg(r, 8, high));
                    return c.With(ins, $"set{cc}{(memory ? " mem" : "")}");
                }

            case 2:
                {
                    bool near = rng.Next(2) == 0;
                    string name = $"j{cc} {(near ? "near" : "short")}";
                    c.Name = name;
                    c.Body = a =>
                    {
                        var taken = a.CreateLabel();
                        var end = a.CreateLabel();
                        Branch(a, cc, taken);
                        a.mov(r15d, 1);
                        a.jmp(end);
                        if (near)
                        {
                            // Pad so that the near form really needs a 32-bit displacement.
                            for (int i = 0; i < 200; i++)
                            {
                                a.nop();
                            }
                        }

                        a.Label(ref taken);
                        a.mov(r15d, 2);
                        a.Label(ref end);
                    };
                    return c;
                }

            default:
                {
                    int which = rng.Next(4); // JECXZ needs an address-size prefix in 64-bit mode: not generated
                    c.Gpr[1] = rng.Next(3) switch { 0 => 0UL, 1 => 1UL, _ => ((ulong)(uint)rng.Next(2) << 32) | (uint)rng.Next(2) };
                    c.Name = which switch { 0 => "jrcxz", 1 => "loop", 2 => "loope", _ => "loopne" };
                    c.Body = a =>
                    {
                        var taken = a.CreateLabel();
                        var end = a.CreateLabel();
                        switch (which)
                        {
                            case 0: a.jrcxz(taken); break;
                            case 1: a.loop(taken); break;
                            case 2: a.loope(taken); break;
                            default: a.loopne(taken); break;
                        }

                        a.mov(r15d, 1);
                        a.jmp(end);
                        a.Label(ref taken);
                        a.mov(r15d, 2);
                        a.Label(ref end);
                    };
                    return c;
                }
        }
    }

    private static void Branch(Assembler a, string cc, Label target)
    {
        switch (cc)
        {
            case "o": a.jo(target); break;
            case "no": a.jno(target); break;
            case "b": a.jb(target); break;
            case "ae": a.jae(target); break;
            case "e": a.je(target); break;
            case "ne": a.jne(target); break;
            case "be": a.jbe(target); break;
            case "a": a.ja(target); break;
            case "s": a.js(target); break;
            case "ns": a.jns(target); break;
            case "p": a.jp(target); break;
            case "np": a.jnp(target); break;
            case "l": a.jl(target); break;
            case "ge": a.jge(target); break;
            case "le": a.jle(target); break;
            default: a.jg(target); break;
        }
    }
}
