// Integer operations translated code calls (UnitCompiler.Native.cs): DIV/IDIV, which the IL cannot do inline without
// the #DE checks growing every unit. Semantics as Instructions/InterpMulDiv.cs (the reference): a result that would
// raise #DE comes back with Ok = false and the unit leaves the instruction to the interpreter, which raises it.
namespace Ringvisor.Emulator.Translation;

/// <summary>A division's outcome: quotient and remainder at the operand size (for 8-bit operands Quotient is the
/// whole new AX, remainder in AH), or Ok = false for #DE.</summary>
internal struct DivResult
{
    public ulong Quotient;
    public ulong Remainder;
    public bool Ok;
}

internal static class ScalarOps
{
    /// <summary>DIV: RDX:RAX (AX for 8-bit operands) by <paramref name="divisor"/> (zero-extended to the size).</summary>
    public static DivResult DivideUnsigned(ulong rax, ulong rdx, ulong divisor, int size)
    {
        var r = default(DivResult);
        if (divisor == 0)
        {
            return r;
        }

        if (size == 8)
        {
            if (rdx >= divisor)
            {
                return r;
            }

            if (rdx == 0)
            {
                // One hardware divide: the remainder from the quotient (the JIT emits a second DIV for a separate %).
                ulong q64 = rax / divisor;
                r.Quotient = q64;
                r.Remainder = rax - (q64 * divisor);
            }
            else
            {
                var dividend = new UInt128(rdx, rax);
                UInt128 q128 = dividend / divisor;
                r.Quotient = (ulong)q128;
                r.Remainder = (ulong)(dividend - (q128 * divisor));
            }

            r.Ok = true;
            return r;
        }

        int bits = size * 8;
        ulong mask = (1UL << bits) - 1;
        // 8-bit: AX / r8 (AH is the high half); otherwise DX:AX or EDX:EAX.
        ulong n = size == 1 ? rax & 0xFFFF : ((rdx & mask) << bits) | (rax & mask);
        ulong q = n / divisor;
        if (q > mask)
        {
            return r;
        }

        ulong rem = n - (q * divisor);
        r.Quotient = size == 1 ? (rem << 8) | q : q;
        r.Remainder = rem;
        r.Ok = true;
        return r;
    }

    /// <summary>IDIV: as <see cref="DivideUnsigned"/>, signed; #DE also for a quotient out of the signed range.</summary>
    public static DivResult DivideSigned(ulong rax, ulong rdx, ulong divisor, int size)
    {
        var r = default(DivResult);
        int bits = size * 8;
        long d = (long)(divisor << (64 - bits)) >> (64 - bits);
        if (d == 0)
        {
            return r;
        }

        if (size == 8)
        {
            if (rdx == (ulong)((long)rax >> 63))
            {
                // The dividend fits 64 bits: only -2^63 / -1 leaves the range.
                long n64 = (long)rax;
                if (d == -1 && n64 == long.MinValue)
                {
                    return r;
                }

                long q64 = n64 / d;
                r.Quotient = (ulong)q64;
                r.Remainder = (ulong)(n64 - (q64 * d));
                r.Ok = true;
                return r;
            }

            var dividend = (Int128)new UInt128(rdx, rax);
            if (d == -1 && dividend == Int128.MinValue)
            {
                return r;
            }

            Int128 q128 = dividend / d;
            if (q128 < long.MinValue || q128 > long.MaxValue)
            {
                return r;
            }

            r.Quotient = (ulong)(long)q128;
            r.Remainder = (ulong)(long)(dividend - (q128 * d));
            r.Ok = true;
            return r;
        }

        // The dividend has at most 64 significant bits here (AX, DX:AX, EDX:EAX), so long arithmetic holds it; only
        // -2^63 / -1 would trap in .NET, and its quotient is out of range for every size anyway.
        long n = size switch
        {
            1 => (short)rax,
            2 => (int)(((rdx & 0xFFFF) << 16) | (rax & 0xFFFF)),
            _ => (long)(((rdx & 0xFFFF_FFFF) << 32) | (rax & 0xFFFF_FFFF)),
        };
        if (d == -1 && n == long.MinValue)
        {
            return r;
        }

        long q = n / d;
        long limit = 1L << (bits - 1);
        if (q < -limit || q >= limit)
        {
            return r;
        }

        long rem = n - (q * d);
        ulong mask = (1UL << bits) - 1;
        r.Quotient = size == 1 ? (((ulong)rem & 0xFF) << 8) | ((ulong)q & 0xFF) : (ulong)q & mask;
        r.Remainder = (ulong)rem & mask;
        r.Ok = true;
        return r;
    }
}
