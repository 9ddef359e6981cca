// String instructions: MOVS STOS LODS SCAS CMPS in every size, without prefix and with REP/REPE/REPNE, DF = 0 and 1,
// small counts (0 included), pointers into the data pages; and REP runs into a read-only or not-present page, which
// must fault with RCX/RSI/RDI reflecting the iterations done (SDM Vol. 2B REP: the state is updated per iteration).
using Iced.Intel;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class StringCases
{
    private static readonly string[] s_ops = ["Movs", "Stos", "Lods", "Scas", "Cmps"];

    public static IEnumerable<DiffCase> Random(int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var c = One(rng);
            c.Origin = $"StringCases.Random({seed}) #{i}";
            yield return c;
        }
    }

    private static DiffCase One(Random rng)
    {
        var c = DiffCase.Randomized(rng);
        string op = s_ops[rng.Next(s_ops.Length)];
        int bits = DiffValues.Sizes[rng.Next(4)];
        string suffix = bits switch { 8 => "b", 16 => "w", 32 => "d", _ => "q" };
        int rep = rng.Next(3); // 0 none, 1 rep/repe, 2 repne
        bool down = rng.Next(2) == 0;
        bool toEdge = rng.Next(8) == 0;
        c.Flags |= down ? DiffCase.Df : 0;
        c.Gpr[1] = rng.Next(4) == 0 ? (ulong)rng.Next(2) : (ulong)rng.Next(40);
        c.Gpr[6] = DiffLayout.Data + 0x1000 + (ulong)rng.Next(0x800);
        c.Gpr[7] = DiffLayout.Data + 0x2000 + (ulong)rng.Next(0x800);
        if (toEdge)
        {
            // Walk into the read-only page (writes) or the page below the data pages (not present, for DF = 1).
            c.Flags &= ~DiffCase.Df;
            c.Gpr[7] = DiffLayout.ReadOnlyPage - (ulong)(rng.Next(1, 8) * (bits / 8));
            c.Gpr[6] = DiffLayout.ReadOnlyPage + 0x1000 - (ulong)(rng.Next(1, 8) * (bits / 8)); // ends in the not-present page
            c.Gpr[1] = 12;
            rep = 1;
        }

        if (op is "Scas" or "Cmps" && rng.Next(2) == 0)
        {
            // Equal runs so that REPE/REPNE stop on a mismatch rather than at the count.
            ulong si = c.Gpr[6] - DiffLayout.Data, di = c.Gpr[7] - DiffLayout.Data;
            ulong al = c.Gpr[0];
            bool scas = op == "Scas";
            int n = rng.Next(1, 24) * (bits / 8);
            c.PrepareData = data =>
            {
                for (int i = 0; i < n; i++)
                {
                    long k = down ? (long)di - i : (long)di + i;
                    long j = down ? (long)si - i : (long)si + i;
                    if (k < 0 || k >= data.Length || j < 0 || j >= data.Length)
                    {
                        break;
                    }

                    data[(int)k] = scas ? (byte)(al >> (8 * (i % (bits / 8)))) : data[(int)j];
                }
            };
        }

        string mnemonic = op.ToLowerInvariant() + suffix;
        string prefix = rep == 0 ? "" : op is "Scas" or "Cmps" ? rep == 1 ? "repe " : "repne " : "rep ";
        c.Name = prefix + mnemonic + (down ? " DF=1" : "") + (toEdge ? " into a faulting page" : "");
        c.Body = a => Emit(a, op, bits, rep);
        return c;
    }

    private static void Emit(Assembler a, string op, int bits, int rep)
    {
        // REP on MOVS/STOS/LODS; REPE/REPNE on SCAS/CMPS (REPNE on MOVS/STOS/LODS is not generated).
        if (rep == 1)
        {
            a = op is "Scas" or "Cmps" ? a.repe : a.rep;
        }
        else if (rep == 2)
        {
            a = op is "Scas" or "Cmps" ? a.repne : a.rep;
        }

        switch (op, bits)
        {
            case ("Movs", 8): a.movsb(); break;
            case ("Movs", 16): a.movsw(); break;
            case ("Movs", 32): a.movsd(); break;
            case ("Movs", _): a.movsq(); break;
            case ("Stos", 8): a.stosb(); break;
            case ("Stos", 16): a.stosw(); break;
            case ("Stos", 32): a.stosd(); break;
            case ("Stos", _): a.stosq(); break;
            case ("Lods", 8): a.lodsb(); break;
            case ("Lods", 16): a.lodsw(); break;
            case ("Lods", 32): a.lodsd(); break;
            case ("Lods", _): a.lodsq(); break;
            case ("Scas", 8): a.scasb(); break;
            case ("Scas", 16): a.scasw(); break;
            case ("Scas", 32): a.scasd(); break;
            case ("Scas", _): a.scasq(); break;
            case ("Cmps", 8): a.cmpsb(); break;
            case ("Cmps", 16): a.cmpsw(); break;
            case ("Cmps", 32): a.cmpsd(); break;
            default: a.cmpsq(); break;
        }
    }
}
