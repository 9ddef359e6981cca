// Bit instructions (SDM Vol. 2: BT/BTS/BTR/BTC with register bit offsets reaching outside the addressed operand,
// BSF/BSR, POPCNT). TZCNT/LZCNT encodings execute as BSF/BSR because BMI1/ABM are not advertised (F3 is then an
// ignored prefix, which Linux's "rep; bsf" relies on).
using System.Numerics;
using Iced.Intel;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    private void ExecBt(in Instruction ins, AluOp op)
    {
        int size = OpSize(ins);
        int bits = size * 8;
        if (!ReadOp(ins, 1, size, out ulong off))
        {
            return;
        }

        ulong bitMask;
        bool oldBit;
        if (ins.GetOpKind(0) == OpKind.Register)
        {
            int bit = (int)(off & (ulong)(bits - 1));
            bitMask = 1UL << bit;
            ulong v = ReadReg(ins.Op0Register);
            oldBit = (v & bitMask) != 0;
            if (op != AluOp.Cmp)
            {
                WriteReg(ins.Op0Register, AluCompute(op, v, bitMask, false));
            }
        }
        else
        {
            ulong la;
            int bit;
            if (ins.GetOpKind(1) == OpKind.Register)
            {
                // A register bit offset is a signed index relative to the operand's address (SDM BT, Table 3-2).
                long soff = SignExtend(off, size);
                long unit = soff >> BitOperations.Log2((uint)bits);
                ulong ea = EffectiveAddress(ins) + (ulong)(unit * size);
                int asz = AddressSize(ins);
                ea = asz == 8 ? ea : asz == 4 ? (uint)ea : (ushort)ea;
                la = Linear(ins.MemorySegment - Register.ES, ea);
                bit = (int)(soff & (bits - 1));
            }
            else
            {
                la = MemoryLinear(ins);
                bit = (int)(off & (ulong)(bits - 1));
            }

            bitMask = 1UL << bit;
            ulong old;
            if (op == AluOp.Cmp)
            {
                if (!ReadMem(la, size, out old))
                {
                    return;
                }
            }
            else if (ins.HasLockPrefix)
            {
                if (!AtomicRmw(la, size, op, bitMask, false, out old, out _))
                {
                    return;
                }
            }
            else
            {
                if (!ReadMem(la, size, out old) || !WriteMem(la, size, AluCompute(op, old, bitMask, false)))
                {
                    return;
                }
            }

            oldBit = (old & bitMask) != 0;
        }

        PutFlag(FlagCf, oldBit);
    }

    private void ExecBitScan(in Instruction ins, bool reverse)
    {
        int size = OpSize(ins, 1);
        if (!ReadOp(ins, 1, size, out ulong v))
        {
            return;
        }

        ulong f = MaterializeFlags();
        if (v == 0)
        {
            _flags = f | FlagZf;
            return;
        }

        _flags = f & ~FlagZf;
        int idx = reverse ? 63 - BitOperations.LeadingZeroCount(v) : BitOperations.TrailingZeroCount(v);
        WriteReg(ins.Op0Register, (ulong)idx);
    }

    private void ExecPopcnt(in Instruction ins)
    {
        int size = OpSize(ins, 1);
        if (!ReadOp(ins, 1, size, out ulong v))
        {
            return;
        }

        WriteReg(ins.Op0Register, (ulong)BitOperations.PopCount(v));
        ulong f = MaterializeFlags() & ~ArithFlags;
        _flags = f | (v == 0 ? FlagZf : 0);
    }
}
