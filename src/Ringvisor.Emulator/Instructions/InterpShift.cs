// Shifts and rotates (SDM Vol. 2: SAL/SHL/SHR/SAR, ROL/ROR/RCL/RCR, SHLD/SHRD). The count is masked to 5 bits
// (6 with REX.W); a masked count of zero changes no flags. Flags for counts > 1 that the SDM leaves undefined are
// computed with the count-1 formulas, as Intel cores do for OF on shifts.
using System.Numerics;
using Iced.Intel;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    /// <summary>Sets all six arithmetic flags eagerly from a result and explicit CF/OF (AF cleared).</summary>
    private void EagerFlags(ulong res, int size, bool cf, bool of)
    {
        _flagOp = FlagOp.None;
        _flags = (_flags & ~ArithFlags) | EagerArithBits(res, size, cf, of);
    }

    private void ExecShift(in Instruction ins, Mnemonic m)
    {
        int size = OpSize(ins);
        int bits = size * 8;
        ulong mask = SizeMask(size);
        if (!ReadOp(ins, 1, 1, out ulong cv))
        {
            return;
        }

        int count = (int)cv & (size == 8 ? 0x3F : 0x1F);
        bool isReg = ins.GetOpKind(0) == OpKind.Register;
        ulong la = isReg ? 0 : MemoryLinear(ins);
        ulong a;
        if (isReg)
        {
            a = ReadReg(ins.Op0Register);
        }
        else if (!ReadMem(la, size, out a))
        {
            return;
        }

        if (count == 0)
        {
            if (isReg && size == 4)
            {
                WriteReg(ins.Op0Register, a);
            }

            return;
        }

        ulong res;
        FlagOp lazy = FlagOp.None;
        ulong lazyA = 0;
        bool cf = false, of = false;
        switch (m)
        {
            case Mnemonic.Shl:
            case Mnemonic.Sal:
                res = (a << count) & mask;
                lazy = FlagOp.Shl;
                lazyA = a;
                break;
            case Mnemonic.Shr:
                res = (a & mask) >> count;
                lazy = FlagOp.Shr;
                lazyA = a & mask;
                break;
            case Mnemonic.Sar:
                {
                    int sh = 64 - bits;
                    long sa = (long)(a << sh) >> sh;
                    res = (ulong)(sa >> Math.Min(count, 63)) & mask;
                    lazy = FlagOp.Sar;
                    lazyA = (ulong)sa;
                    break;
                }

            case Mnemonic.Rol:
                {
                    int c = count % bits;
                    res = c == 0 ? a & mask : ((a << c) | ((a & mask) >> (bits - c))) & mask;
                    cf = (res & 1) != 0;
                    of = ((res & SignBit(size)) != 0) ^ cf;
                    break;
                }

            case Mnemonic.Ror:
                {
                    int c = count % bits;
                    res = c == 0 ? a & mask : (((a & mask) >> c) | (a << (bits - c))) & mask;
                    bool msb = (res & SignBit(size)) != 0;
                    bool msb1 = (res & (SignBit(size) >> 1)) != 0;
                    cf = msb;
                    of = msb ^ msb1;
                    break;
                }

            default:
                {
                    // RCL / RCR rotate through CF: a (bits + 1)-bit rotation.
                    int c = count % (bits + 1);
                    cf = GetCf();
                    bool origOf = ((a & SignBit(size)) != 0) ^ cf;
                    res = a & mask;
                    for (int i = 0; i < c; i++)
                    {
                        if (m == Mnemonic.Rcl)
                        {
                            bool outBit = (res & SignBit(size)) != 0;
                            res = ((res << 1) | (cf ? 1UL : 0)) & mask;
                            cf = outBit;
                        }
                        else
                        {
                            bool outBit = (res & 1) != 0;
                            res = (res >> 1) | (cf ? SignBit(size) : 0);
                            cf = outBit;
                        }
                    }

                    of = m == Mnemonic.Rcl ? ((res & SignBit(size)) != 0) ^ cf : origOf;
                    break;
                }
        }

        if (isReg)
        {
            WriteReg(ins.Op0Register, res);
        }
        else if (!WriteMem(la, size, res))
        {
            return;
        }

        if (lazy != FlagOp.None)
        {
            SetLazy(lazy, lazyA, (ulong)count, res, size);
            return;
        }

        if (m is Mnemonic.Rcl or Mnemonic.Rcr && count % (bits + 1) == 0)
        {
            return;
        }

        ulong f = MaterializeFlags() & ~(FlagCf | FlagOf);
        _flags = f | (cf ? FlagCf : 0) | (of ? FlagOf : 0);
    }

    private void ExecShiftDouble(in Instruction ins, bool left)
    {
        int size = OpSize(ins);
        int bits = size * 8;
        ulong mask = SizeMask(size);
        if (!ReadOp(ins, 2, 1, out ulong cv))
        {
            return;
        }

        int count = (int)cv & (size == 8 ? 0x3F : 0x1F);
        bool isReg = ins.GetOpKind(0) == OpKind.Register;
        ulong la = isReg ? 0 : MemoryLinear(ins);
        ulong a;
        if (isReg)
        {
            a = ReadReg(ins.Op0Register);
        }
        else if (!ReadMem(la, size, out a))
        {
            return;
        }

        ulong b = ReadReg(ins.Op1Register);
        if (count == 0)
        {
            if (isReg && size == 4)
            {
                WriteReg(ins.Op0Register, a);
            }

            return;
        }

        ulong res;
        bool cf;
        if (size == 2)
        {
            // 16-bit forms shift the 32-bit concatenation (Intel behaviour for counts > 16 is undefined).
            ulong wide = left ? ((a & 0xFFFF) << 16) | (b & 0xFFFF) : ((b & 0xFFFF) << 16) | (a & 0xFFFF);
            if (left)
            {
                ulong r = wide << count;
                res = (r >> 16) & 0xFFFF;
                cf = ((wide >> (32 - count)) & 1) != 0;
            }
            else
            {
                res = (wide >> count) & 0xFFFF;
                cf = ((wide >> (count - 1)) & 1) != 0;
            }
        }
        else if (left)
        {
            res = ((a << count) | ((b & mask) >> (bits - count))) & mask;
            cf = ((a >> (bits - count)) & 1) != 0;
        }
        else
        {
            res = (((a & mask) >> count) | (b << (bits - count))) & mask;
            cf = ((a >> (count - 1)) & 1) != 0;
        }

        if (isReg)
        {
            WriteReg(ins.Op0Register, res);
        }
        else if (!WriteMem(la, size, res))
        {
            return;
        }

        bool of = ((res ^ a) & SignBit(size)) != 0;
        EagerFlags(res, size, cf, of);
    }
}
