// Multiply and divide (SDM Vol. 2: MUL, IMUL in its one/two/three-operand forms, DIV, IDIV). #DE on a zero divisor
// or a quotient that does not fit. MUL/IMUL set CF=OF when the high half is significant; SF/ZF/PF follow the low
// result as Intel cores do (the SDM leaves them undefined), AF is cleared.
using Iced.Intel;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    private void ExecMul(in Instruction ins)
    {
        int size = OpSize(ins);
        if (!ReadOp(ins, 0, size, out ulong b))
        {
            return;
        }

        ulong a = Gpr[0] & SizeMask(size);
        ulong lo, hi;
        switch (size)
        {
            case 1:
                lo = a * b;
                WriteReg(Register.AX, lo);
                hi = lo >> 8;
                lo &= 0xFF;
                break;
            case 2:
                lo = a * b;
                WriteReg(Register.AX, lo);
                WriteReg(Register.DX, lo >> 16);
                hi = lo >> 16;
                lo &= 0xFFFF;
                break;
            case 4:
                lo = a * b;
                Gpr[0] = (uint)lo;
                Gpr[2] = lo >> 32;
                hi = lo >> 32;
                lo = (uint)lo;
                break;
            default:
                hi = Math.BigMul(a, b, out lo);
                Gpr[0] = lo;
                Gpr[2] = hi;
                break;
        }

        EagerFlags(lo, size, hi != 0, hi != 0);
    }

    private void ExecImul(in Instruction ins)
    {
        int size;
        long a, b;
        if (ins.OpCount == 1)
        {
            size = OpSize(ins);
            if (!ReadOp(ins, 0, size, out ulong src))
            {
                return;
            }

            a = SignExtend(Gpr[0], size);
            b = SignExtend(src, size);
            if (size == 8)
            {
                long hi = Math.BigMul(a, b, out long lo);
                Gpr[0] = (ulong)lo;
                Gpr[2] = (ulong)hi;
                bool ovf = hi != (lo >> 63);
                EagerFlags((ulong)lo, 8, ovf, ovf);
                return;
            }

            long p = a * b;
            switch (size)
            {
                case 1:
                    WriteReg(Register.AX, (ulong)p);
                    break;
                case 2:
                    WriteReg(Register.AX, (ulong)p);
                    WriteReg(Register.DX, (ulong)p >> 16);
                    break;
                default:
                    Gpr[0] = (uint)p;
                    Gpr[2] = (uint)((ulong)p >> 32);
                    break;
            }

            bool o = p != SignExtend((ulong)p, size);
            EagerFlags((ulong)p, size, o, o);
            return;
        }

        // Two- and three-operand forms: dest = src1 * src2 truncated.
        var dst = ins.Op0Register;
        size = s_regSize[(int)dst];
        ulong s1, s2;
        if (ins.OpCount == 2)
        {
            s1 = ReadReg(dst);
            if (!ReadOp(ins, 1, size, out s2))
            {
                return;
            }
        }
        else
        {
            if (!ReadOp(ins, 1, size, out s1) || !ReadOp(ins, 2, size, out s2))
            {
                return;
            }
        }

        a = SignExtend(s1, size);
        b = SignExtend(s2, size);
        if (size == 8)
        {
            long hi = Math.BigMul(a, b, out long lo);
            WriteReg(dst, (ulong)lo);
            bool ovf = hi != (lo >> 63);
            EagerFlags((ulong)lo, 8, ovf, ovf);
            return;
        }

        long prod = a * b;
        WriteReg(dst, (ulong)prod);
        bool of = prod != SignExtend((ulong)prod, size);
        EagerFlags((ulong)prod, size, of, of);
    }

    internal static long SignExtend(ulong v, int size)
    {
        int sh = 64 - size * 8;
        return (long)(v << sh) >> sh;
    }

    private void ExecDiv(in Instruction ins, bool signed)
    {
        int size = OpSize(ins);
        if (!ReadOp(ins, 0, size, out ulong divisor))
        {
            return;
        }

        if (divisor == 0)
        {
            _ = Fault(Exceptions.ExceptionVector.DivideError);
            return;
        }

        ulong mask = SizeMask(size);
        if (!signed)
        {
            ulong q, r;
            switch (size)
            {
                case 1:
                    {
                        ulong n = Gpr[0] & 0xFFFF;
                        q = n / divisor;
                        r = n % divisor;
                        if (q > 0xFF)
                        {
                            _ = Fault(Exceptions.ExceptionVector.DivideError);
                            return;
                        }

                        WriteReg(Register.AX, (r << 8) | q);
                        return;
                    }

                case 8:
                    {
                        ulong hi = Gpr[2];
                        if (hi >= divisor)
                        {
                            _ = Fault(Exceptions.ExceptionVector.DivideError);
                            return;
                        }

                        UInt128 n = ((UInt128)hi << 64) | Gpr[0];
                        q = (ulong)(n / divisor);
                        r = (ulong)(n % divisor);
                        Gpr[0] = q;
                        Gpr[2] = r;
                        return;
                    }

                default:
                    {
                        int bits = size * 8;
                        ulong n = ((Gpr[2] & mask) << bits) | (Gpr[0] & mask);
                        q = n / divisor;
                        r = n % divisor;
                        if (q > mask)
                        {
                            _ = Fault(Exceptions.ExceptionVector.DivideError);
                            return;
                        }

                        WriteReg(size == 2 ? Register.AX : Register.EAX, q);
                        WriteReg(size == 2 ? Register.DX : Register.EDX, r);
                        return;
                    }
            }
        }

        long d = SignExtend(divisor, size);
        if (size == 8)
        {
            Int128 n = (Int128)(((UInt128)Gpr[2] << 64) | Gpr[0]);
            if (d == -1 && n == Int128.MinValue)
            {
                _ = Fault(Exceptions.ExceptionVector.DivideError);
                return;
            }

            Int128 q = n / d;
            if (q > long.MaxValue || q < long.MinValue)
            {
                _ = Fault(Exceptions.ExceptionVector.DivideError);
                return;
            }

            Gpr[0] = (ulong)(long)q;
            Gpr[2] = (ulong)(long)(n % d);
            return;
        }

        long num = size switch
        {
            1 => (short)Gpr[0],
            2 => (int)(((Gpr[2] & 0xFFFF) << 16) | (Gpr[0] & 0xFFFF)),
            _ => (long)(((Gpr[2] & 0xFFFF_FFFF) << 32) | (Gpr[0] & 0xFFFF_FFFF)),
        };
        if (d == -1 && num == long.MinValue)
        {
            _ = Fault(Exceptions.ExceptionVector.DivideError);
            return;
        }

        long sq = num / d;
        long sr = num % d;
        long lim = 1L << (size * 8 - 1);
        if (sq >= lim || sq < -lim)
        {
            _ = Fault(Exceptions.ExceptionVector.DivideError);
            return;
        }

        switch (size)
        {
            case 1:
                WriteReg(Register.AX, (((ulong)sr & 0xFF) << 8) | ((ulong)sq & 0xFF));
                break;
            case 2:
                WriteReg(Register.AX, (ulong)sq);
                WriteReg(Register.DX, (ulong)sr);
                break;
            default:
                WriteReg(Register.EAX, (ulong)sq);
                WriteReg(Register.EDX, (ulong)sr);
                break;
        }
    }
}
