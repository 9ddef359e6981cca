// Operand choices shared by the generators: register pairs of one size (8-bit high registers included, which
// forbid REX), memory operands into the data pages through a base register, immediates per encoding.
using Iced.Intel;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class DiffOperands
{
    /// <summary>Register encodings usable with AH..BH (no REX): 0-3 are AL..BL, 4-7 mean AH..BH.</summary>
    public static Register Reg(int index, int bits, bool legacyHigh) =>
        legacyHigh && bits == 8 && index is >= 4 and < 8 ? DiffValues.HighByte(index) : DiffValues.Gpr(index, bits);

    /// <summary>Picks a register index for an operand of <paramref name="bits"/>; with <paramref name="legacyHigh"/> only 0-7 (4-7 = AH..BH).</summary>
    public static int Pick(Random rng, bool legacyHigh, params int[] avoid)
    {
        while (true)
        {
            int i = legacyHigh ? rng.Next(8) : rng.Next(16);
            if (i != 4 || legacyHigh)
            {
                if (Array.IndexOf(avoid, i) < 0)
                {
                    return i;
                }
            }
        }
    }

    /// <summary>The 64-bit register a (possibly high-byte) operand index lives in.</summary>
    public static int Home(int index, int bits, bool legacyHigh) => legacyHigh && bits == 8 && index is >= 4 and < 8 ? index - 4 : index;

    /// <summary>Points register <paramref name="baseIndex"/> into the data pages and returns [base + disp].</summary>
    public static MemoryOperand DataOperand(Random rng, DiffCase c, int baseIndex, int size)
    {
        int disp = rng.Next(3) switch { 0 => 0, 1 => rng.Next(-128, 128), _ => rng.Next(-0x800, 0x800) };
        ulong target = DiffLayout.Data + 0x1000 + (ulong)rng.Next(DiffLayout.DataSize - 0x2000 - size);
        c.Gpr[baseIndex] = target - (ulong)(long)disp;
        return new MemoryOperand(DiffValues.Gpr64(baseIndex), disp);
    }

    public static Code Code(string name) => Enum.Parse<Code>(name);

    /// <summary>A random immediate for an <paramref name="immBits"/>-bit field (returned sign-extended where the encoding sign-extends).</summary>
    public static long Imm(Random rng, int immBits)
    {
        ulong v = DiffValues.Next(rng);
        return immBits switch
        {
            8 => (sbyte)v,
            16 => (short)v,
            _ => (int)v,
        };
    }
}
