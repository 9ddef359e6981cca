// A few x87 cases: two doubles loaded from the data pages, one operation, a store (double, extended, integer) under
// a random rounding and precision control with all exceptions masked. The whole x87 state (FCW, FSW, tags, ST0-7)
// and the stored bytes are compared. SDM Vol. 1 §8.1.3.1 / Vol. 2 per instruction: after arithmetic C0, C2 and C3
// are undefined (C1 is the round-up indicator and is compared); transcendental instructions are left out (their
// results are implementation-specific within the documented error bound).
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class X87Cases
{
    private const ushort C0 = 1 << 8, C2 = 1 << 10, C3 = 1 << 14;

    private static readonly string[] s_ops =
        ["faddp", "fsubp", "fsubrp", "fmulp", "fdivp", "fdivrp", "fsqrt", "fabs", "fchs", "frndint", "fscale", "fprem", "fxch", "fcomip", "fucomip", "ftst", "fxtract"];

    public static IEnumerable<DiffCase> Random(int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var c = One(rng);
            c.Origin = $"X87Cases.Random({seed}) #{i}";
            yield return c;
        }
    }

    private static ulong NextDouble(Random rng) => rng.Next(3) switch
    {
        0 => (ulong)rng.NextInt64() ^ ((ulong)rng.Next(2) << 63),
        1 => BitConverter.DoubleToUInt64Bits((rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-80, 80))),
        _ => SseCases.Doubles[rng.Next(SseCases.Doubles.Count)],
    };

    private static DiffCase One(Random rng)
    {
        var c = DiffCase.Randomized(rng);
        string op = s_ops[rng.Next(s_ops.Length)];
        int store = rng.Next(5); // fstp m64, fstp m80, fistp m64, fistp m32, fst m32 + fstp m64
        ulong a = NextDouble(rng), b = NextDouble(rng);
        if (op == "fscale")
        {
            b = BitConverter.DoubleToUInt64Bits(rng.Next(-70, 70) + (rng.Next(4) == 0 ? 0.5 : 0));
        }

        // FCW: all exceptions masked, random precision (bits 8-9) and rounding (bits 10-11) control.
        ushort fcw = (ushort)(0x3F | 0x40 | (rng.Next(4) << 8) | (rng.Next(4) << 10));
        DiffFx.SetFcw(c.Fx, fcw);
        c.Gpr[3] = DiffLayout.Data + 0x200;
        c.PrepareData = data =>
        {
            BitConverter.TryWriteBytes(data.Slice(0x200, 8), a);
            BitConverter.TryWriteBytes(data.Slice(0x208, 8), b);
        };
        c.UndefinedFsw = op is "fprem" or "ftst" or "fxch" ? (ushort)0 : (ushort)(C0 | C2 | C3);
        if (op is "fcomip" or "fucomip")
        {
            // FCOMIP sets ZF PF CF and clears OF SF AF; C0/C2/C3 are not affected (compared).
            c.UndefinedFsw = 0;
        }

        c.Name = $"{op} store {store} fcw {fcw:X}";
        c.Body = asm =>
        {
            asm.fld(__qword_ptr[rbx + 8]);
            asm.fld(__qword_ptr[rbx]);
            switch (op)
            {
                case "faddp": asm.faddp(st1, st0); break;
                case "fsubp": asm.fsubp(st1, st0); break;
                case "fsubrp": asm.fsubrp(st1, st0); break;
                case "fmulp": asm.fmulp(st1, st0); break;
                case "fdivp": asm.fdivp(st1, st0); break;
                case "fdivrp": asm.fdivrp(st1, st0); break;
                case "fsqrt": asm.fsqrt(); break;
                case "fabs": asm.fabs(); break;
                case "fchs": asm.fchs(); break;
                case "frndint": asm.frndint(); break;
                case "fscale": asm.fscale(); break;
                case "fprem": asm.fprem(); break;
                case "fxch": asm.fxch(st0, st1); break;
                case "fcomip": asm.fcomip(st0, st1); break;
                case "fucomip": asm.fucomip(st0, st1); break;
                case "ftst": asm.ftst(); break;
                default: asm.fxtract(); break;
            }

            switch (store)
            {
                case 0: asm.fstp(__qword_ptr[rbx + 16]); break;
                case 1: asm.fstp(__tword_ptr[rbx + 16]); break;
                case 2: asm.fistp(__qword_ptr[rbx + 16]); break;
                case 3: asm.fistp(__dword_ptr[rbx + 16]); break;
                default:
                    asm.fst(__dword_ptr[rbx + 16]);
                    asm.fstp(__qword_ptr[rbx + 24]);
                    break;
            }
        };
        return c;
    }
}
