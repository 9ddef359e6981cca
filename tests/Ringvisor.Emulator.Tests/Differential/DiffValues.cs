// Random operand values weighted towards the edges where flags change (zero, sign boundaries, all ones) and
// random register choices, for the generators. Deterministic for a given Random.
using Iced.Intel;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class DiffValues
{
    private static readonly ulong[] s_edges =
    [
        0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x1_0000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
        0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFE,
        0x8000_0000_0000_0001, 0x0F0F_0F0F_0F0F_0F0F, 0xF0F0_F0F0_F0F0_F0F0, 0x5555_5555_5555_5555,
    ];

    private static readonly Register[] s_gpr64 =
    [
        Register.RAX, Register.RCX, Register.RDX, Register.RBX, Register.RSP, Register.RBP, Register.RSI, Register.RDI,
        Register.R8, Register.R9, Register.R10, Register.R11, Register.R12, Register.R13, Register.R14, Register.R15,
    ];

    public static ulong Next(Random rng) => rng.Next(8) switch
    {
        0 or 1 => s_edges[rng.Next(s_edges.Length)],
        2 => s_edges[rng.Next(s_edges.Length)] + (ulong)(rng.Next(5) - 2),
        3 => (ulong)rng.Next(256),
        4 => (ulong)rng.NextInt64() >> rng.Next(64),
        5 => ~((ulong)rng.NextInt64() >> rng.Next(64)),
        _ => (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 33),
    };

    /// <summary>A value whose low <paramref name="bits"/> are interesting (the upper bits random, to catch leaks).</summary>
    public static ulong NextSized(Random rng, int bits)
    {
        ulong v = Next(rng);
        if (bits < 64 && rng.Next(2) == 0)
        {
            ulong low = v & Mask(bits);
            ulong e = s_edges[rng.Next(s_edges.Length)] & Mask(bits);
            v = (((ulong)rng.NextInt64() << bits) | (rng.Next(2) == 0 ? e : low));
        }

        return v;
    }

    public static ulong Mask(int bits) => bits >= 64 ? ulong.MaxValue : (1UL << bits) - 1;

    /// <summary>Random CF PF AF ZF SF OF.</summary>
    public static ulong NextFlags(Random rng) => (ulong)rng.Next(0x1000) & DiffCase.Arith;

    /// <summary>Fills every GPR but RSP with random values.</summary>
    public static void FillGprs(Random rng, DiffCase c)
    {
        for (int i = 0; i < 16; i++)
        {
            if (i != 4)
            {
                c.Gpr[i] = Next(rng);
            }
        }
    }

    public static Register Gpr64(int index) => s_gpr64[index];

    /// <summary>The register of <paramref name="bits"/> size with encoding number <paramref name="index"/> (8-bit: SPL..DIL with REX).</summary>
    public static Register Gpr(int index, int bits) => bits switch
    {
        8 => index < 4 ? Register.AL + index : index < 8 ? Register.SPL + (index - 4) : Register.R8L + (index - 8),
        16 => Register.AX + index,
        32 => Register.EAX + index,
        _ => Register.RAX + index,
    };

    /// <summary>AH, CH, DH, BH: encoding numbers 4-7 without REX.</summary>
    public static Register HighByte(int index) => Register.AH + (index - 4);

    /// <summary>A random non-RSP register index, different from those in <paramref name="avoid"/>.</summary>
    public static int PickIndex(Random rng, params int[] avoid)
    {
        while (true)
        {
            int i = rng.Next(16);
            if (i != 4 && Array.IndexOf(avoid, i) < 0)
            {
                return i;
            }
        }
    }

    public static int[] Sizes { get; } = [8, 16, 32, 64];
}
