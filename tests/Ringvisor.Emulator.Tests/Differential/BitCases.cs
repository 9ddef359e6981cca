// BT BTS BTR BTC (register and immediate offsets, register and memory destinations; a register offset into memory
// addresses bits outside the operand, below and above it), BSF BSR POPCNT. LZCNT/TZCNT are left out: the
// interpreter's CPUID advertises neither ABM nor BMI1, so they are not part of its model (on such a CPU they execute
// as BSR/BSF, while this host executes them as LZCNT/TZCNT). SDM Vol. 2A BT*: CF is the bit, ZF unchanged, OF SF AF
// PF undefined. BSF/BSR: ZF defined, the others undefined, the destination undefined for a zero source. POPCNT:
// every flag defined.
using Iced.Intel;
using static Ringvisor.Emulator.Tests.Differential.DiffOperands;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class BitCases
{
    private static readonly string[] s_bt = ["Bt", "Bts", "Btr", "Btc"];

    public static IEnumerable<DiffCase> Random(int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var c = One(rng);
            c.Origin = $"BitCases.Random({seed}) #{i}";
            yield return c;
        }
    }

    private static DiffCase One(Random rng)
    {
        var c = DiffCase.Randomized(rng);
        int bits = DiffValues.Sizes[1 + rng.Next(3)];
        int d = Pick(rng, false);
        int s = Pick(rng, false, d);
        int b = Pick(rng, true, 4, d, s);
        int kind = rng.Next(10);
        if (kind < 6)
        {
            string op = s_bt[rng.Next(4)];
            int form = rng.Next(4); // 0 r,r 1 r,imm 2 m,r 3 m,imm
            Instruction ins;
            switch (form)
            {
                case 0:
                    ins = Instruction.Create(Code($"{op}_rm{bits}_r{bits}"), DiffValues.Gpr(d, bits), DiffValues.Gpr(s, bits));
                    break;
                case 1:
                    ins = Instruction.Create(Code($"{op}_rm{bits}_imm8"), DiffValues.Gpr(d, bits), rng.Next(256));
                    break;
                case 2:
                    {
                        // The bit offset is a signed value of the operand size; keep the addressed byte inside the
                        // data pages (base in the middle, offset within +-4 KiB * 8 bits).
                        var m = new MemoryOperand(DiffValues.Gpr64(b), rng.Next(-64, 64));
                        c.Gpr[b] = DiffLayout.Data + 0x2000 + (ulong)rng.Next(-64, 64);
                        long offset = rng.Next(3) == 0 ? rng.Next(-bits, 2 * bits) : rng.Next(-0x7000, 0x7000);
                        c.Gpr[s] = (c.Gpr[s] & ~DiffValues.Mask(bits)) | ((ulong)offset & DiffValues.Mask(bits));
                        ins = Instruction.Create(Code($"{op}_rm{bits}_r{bits}"), m, DiffValues.Gpr(s, bits));
                        break;
                    }

                default:
                    ins = Instruction.Create(Code($"{op}_rm{bits}_imm8"), DataOperand(rng, c, b, bits / 8), rng.Next(256));
                    break;
            }

            c.UndefinedFlags = DiffCase.Of | DiffCase.Sf | DiffCase.Af | DiffCase.Pf;
            return c.With(ins, $"{op}{bits} form {form}");
        }

        string scan = kind switch { 6 or 7 => "Bsf", 8 => "Bsr", _ => "Popcnt" };
        if (kind == 7)
        {
            scan = "Bsr";
        }

        bool memory = rng.Next(4) == 0;
        bool zero = rng.Next(5) == 0;
        Instruction si;
        ulong source = zero ? 0 : DiffValues.NextSized(rng, bits);
        if (memory)
        {
            var m = DataOperand(rng, c, b, bits / 8);
            int offset = (int)(c.Gpr[b] + (ulong)m.Displacement - DiffLayout.Data);
            c.PrepareData = data =>
            {
                for (int i = 0; i < bits / 8; i++)
                {
                    data[offset + i] = (byte)(source >> (8 * i));
                }
            };
            si = Instruction.Create(Code($"{scan}_r{bits}_rm{bits}"), DiffValues.Gpr(d, bits), m);
        }
        else
        {
            c.Gpr[s] = (c.Gpr[s] & ~DiffValues.Mask(bits)) | (source & DiffValues.Mask(bits));
            si = Instruction.Create(Code($"{scan}_r{bits}_rm{bits}"), DiffValues.Gpr(d, bits), DiffValues.Gpr(s, bits));
        }

        if (scan != "Popcnt")
        {
            c.UndefinedFlags = DiffCase.Cf | DiffCase.Of | DiffCase.Sf | DiffCase.Af | DiffCase.Pf;
            if ((source & DiffValues.Mask(bits)) == 0)
            {
                c.UndefinedGprs = 1 << d;
            }
        }

        return c.With(si, $"{scan}{bits}{(memory ? " mem" : "")}{(zero ? " zero" : "")}");
    }
}
