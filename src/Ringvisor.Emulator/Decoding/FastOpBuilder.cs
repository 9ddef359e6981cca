// Turns an Iced instruction of 64-bit code into a FastOp when it has one of the hot, simple forms (no LOCK, no
// high-byte registers, no segment/control registers); everything else stays Generic and runs through the full
// interpreter. Branch targets and RIP-relative displacements are stored as deltas from the next instruction.
using System.Numerics;
using Iced.Intel;
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator.Decoding;

internal static class FastOpBuilder
{
    public static FastOp Build(in Instruction ins)
    {
        var op = new FastOp { Length = (byte)ins.Length, Base = FastOp.NoReg, Index = FastOp.NoReg };
        if (ins.HasLockPrefix || ins.HasRepPrefix || ins.HasRepnePrefix)
        {
            return op;
        }

        op.Kind = Classify(ins, ref op);
        return op;
    }

    /// <summary>A general-purpose register as (index, size); false for none, AH..BH and non-GPRs.</summary>
    internal static bool Gpr(Register r, out byte index, out byte size)
    {
        index = 0;
        size = 0;
        if (r == Register.None || !r.IsGPR() || r is >= Register.AH and <= Register.BH)
        {
            return false;
        }

        index = (byte)(r.GetFullRegister() - Register.RAX);
        size = (byte)r.GetSize();
        return true;
    }

    /// <summary>A memory operand into the FastOp fields; false for forms FastOp cannot describe.</summary>
    internal static bool Memory(in Instruction ins, ref FastOp op)
    {
        var b = ins.MemoryBase;
        var x = ins.MemoryIndex;
        if (b == Register.RIP)
        {
            op.Base = FastOp.RipBase;
            op.Disp = (long)(ins.MemoryDisplacement64 - ins.NextIP);
            op.AddrSize = 8;
        }
        else
        {
            op.Disp = (long)ins.MemoryDisplacement64;
            op.AddrSize = 8;
            if (b != Register.None)
            {
                if (!Gpr(b, out op.Base, out byte bs) || bs < 4)
                {
                    return false;
                }

                op.AddrSize = bs;
            }

            if (x != Register.None)
            {
                if (!Gpr(x, out op.Index, out byte xs) || xs < 4)
                {
                    return false;
                }

                op.AddrSize = xs;
                op.Scale = (byte)BitOperations.Log2((uint)ins.MemoryIndexScale);
            }
        }

        var seg = ins.MemorySegment;
        if (seg is < Register.ES or > Register.GS)
        {
            return false;
        }

        op.Seg = (byte)(seg - Register.ES);
        return true;
    }

    private static bool IsImm(OpKind k) => k is OpKind.Immediate8 or OpKind.Immediate16 or OpKind.Immediate32 or OpKind.Immediate64 or
        OpKind.Immediate8to16 or OpKind.Immediate8to32 or OpKind.Immediate8to64 or OpKind.Immediate32to64;

    private static FastKind Classify(in Instruction ins, ref FastOp op)
    {
        var m = ins.Mnemonic;
        int n = ins.OpCount;
        var k0 = n > 0 ? ins.GetOpKind(0) : OpKind.Register;
        var k1 = n > 1 ? ins.GetOpKind(1) : OpKind.Register;
        switch (m)
        {
            case Mnemonic.Nop:
            case Mnemonic.Pause:
            case Mnemonic.Endbr64:
                return FastKind.Nop;
            case Mnemonic.Add:
            case Mnemonic.Or:
            case Mnemonic.Adc:
            case Mnemonic.Sbb:
            case Mnemonic.And:
            case Mnemonic.Sub:
            case Mnemonic.Xor:
            case Mnemonic.Cmp:
            case Mnemonic.Test:
            case Mnemonic.Mov:
                {
                    bool test = m == Mnemonic.Test;
                    bool mov = m == Mnemonic.Mov;
                    op.Aux = (byte)(m switch
                    {
                        Mnemonic.Add => AluOp.Add,
                        Mnemonic.Or => AluOp.Or,
                        Mnemonic.Adc => AluOp.Adc,
                        Mnemonic.Sbb => AluOp.Sbb,
                        Mnemonic.And => AluOp.And,
                        Mnemonic.Sub => AluOp.Sub,
                        Mnemonic.Xor => AluOp.Xor,
                        _ => AluOp.Cmp,
                    });
                    if (n != 2)
                    {
                        return FastKind.Generic;
                    }

                    if (k0 == OpKind.Register && k1 == OpKind.Register)
                    {
                        if (!Gpr(ins.Op0Register, out op.Dst, out op.Size) || !Gpr(ins.Op1Register, out op.Src, out _))
                        {
                            return FastKind.Generic;
                        }

                        return mov ? FastKind.MovRR : test ? FastKind.TestRR : FastKind.AluRR;
                    }

                    if (k0 == OpKind.Register && IsImm(k1))
                    {
                        if (!Gpr(ins.Op0Register, out op.Dst, out op.Size))
                        {
                            return FastKind.Generic;
                        }

                        op.Imm = ins.GetImmediate(1) & Cpu.SizeMask(op.Size);
                        return mov ? FastKind.MovRI : test ? FastKind.TestRI : FastKind.AluRI;
                    }

                    if (k0 == OpKind.Register && k1 == OpKind.Memory)
                    {
                        if (test || !Gpr(ins.Op0Register, out op.Dst, out op.Size) || !Memory(ins, ref op))
                        {
                            return FastKind.Generic;
                        }

                        return mov ? FastKind.MovRM : FastKind.AluRM;
                    }

                    if (k0 == OpKind.Memory && k1 == OpKind.Register)
                    {
                        if (!Gpr(ins.Op1Register, out op.Src, out op.Size) || !Memory(ins, ref op))
                        {
                            return FastKind.Generic;
                        }

                        return mov ? FastKind.MovMR : test ? FastKind.TestMR : FastKind.AluMR;
                    }

                    if (k0 == OpKind.Memory && IsImm(k1))
                    {
                        op.Size = (byte)ins.MemorySize.GetSize();
                        if (op.Size is not (1 or 2 or 4 or 8) || !Memory(ins, ref op))
                        {
                            return FastKind.Generic;
                        }

                        op.Imm = ins.GetImmediate(1) & Cpu.SizeMask(op.Size);
                        return mov ? FastKind.MovMI : test ? FastKind.TestMI : FastKind.AluMI;
                    }

                    return FastKind.Generic;
                }

            case Mnemonic.Movzx:
            case Mnemonic.Movsx:
            case Mnemonic.Movsxd:
                {
                    if (!Gpr(ins.Op0Register, out op.Dst, out op.Size))
                    {
                        return FastKind.Generic;
                    }

                    bool sx = m != Mnemonic.Movzx;
                    if (k1 == OpKind.Register)
                    {
                        if (!Gpr(ins.Op1Register, out op.Src, out op.SrcSize))
                        {
                            return FastKind.Generic;
                        }

                        return sx ? FastKind.MovsxRR : FastKind.MovzxRR;
                    }

                    op.SrcSize = (byte)ins.MemorySize.GetSize();
                    if (op.SrcSize is not (1 or 2 or 4) || !Memory(ins, ref op))
                    {
                        return FastKind.Generic;
                    }

                    return sx ? FastKind.MovsxRM : FastKind.MovzxRM;
                }

            case Mnemonic.Lea:
                if (!Gpr(ins.Op0Register, out op.Dst, out op.Size) || !Memory(ins, ref op))
                {
                    return FastKind.Generic;
                }

                return FastKind.Lea;
            case Mnemonic.Inc:
            case Mnemonic.Dec:
                if (k0 != OpKind.Register || !Gpr(ins.Op0Register, out op.Dst, out op.Size))
                {
                    return FastKind.Generic;
                }

                return m == Mnemonic.Inc ? FastKind.IncR : FastKind.DecR;
            case Mnemonic.Jmp:
                if (k0 != OpKind.NearBranch64)
                {
                    return FastKind.Generic;
                }

                op.Imm = ins.NearBranchTarget - ins.NextIP;
                return FastKind.Jmp;
            case Mnemonic.Call:
                if (k0 != OpKind.NearBranch64)
                {
                    return FastKind.Generic;
                }

                op.Imm = ins.NearBranchTarget - ins.NextIP;
                return FastKind.CallRel;
            case Mnemonic.Ret:
                return ins.Code == Code.Retnq ? FastKind.Ret : FastKind.Generic;
            case Mnemonic.Push:
                if (ins.Code != Code.Push_r64 || !Gpr(ins.Op0Register, out op.Src, out op.Size))
                {
                    return FastKind.Generic;
                }

                return FastKind.PushR;
            case Mnemonic.Pop:
                if (ins.Code != Code.Pop_r64 || !Gpr(ins.Op0Register, out op.Dst, out op.Size))
                {
                    return FastKind.Generic;
                }

                return FastKind.PopR;
            case Mnemonic.Shl:
            case Mnemonic.Sal:
            case Mnemonic.Shr:
            case Mnemonic.Sar:
                if (k0 != OpKind.Register || k1 != OpKind.Immediate8 || !Gpr(ins.Op0Register, out op.Dst, out op.Size))
                {
                    return FastKind.Generic;
                }

                op.Imm = ins.Immediate8;
                op.Aux = (byte)(m is Mnemonic.Shl or Mnemonic.Sal ? 0 : m == Mnemonic.Shr ? 1 : 2);
                return FastKind.ShiftRI;
            case Mnemonic.Imul:
                {
                    // Two- and three-operand forms with 32/64-bit destinations (dest = src1 * src2 truncated).
                    if (n < 2 || k0 != OpKind.Register || !Gpr(ins.Op0Register, out op.Dst, out op.Size) || op.Size < 4)
                    {
                        return FastKind.Generic;
                    }

                    if (n == 3)
                    {
                        if (k1 != OpKind.Register || !Gpr(ins.Op1Register, out op.Src, out _))
                        {
                            return FastKind.Generic;
                        }

                        op.Imm = ins.GetImmediate(2);
                        return FastKind.ImulRRI;
                    }

                    if (k1 == OpKind.Register)
                    {
                        return Gpr(ins.Op1Register, out op.Src, out _) ? FastKind.ImulRR : FastKind.Generic;
                    }

                    return Memory(ins, ref op) ? FastKind.ImulRM : FastKind.Generic;
                }

            default:
                break;
        }

        var cc = ins.ConditionCode;
        if (cc != ConditionCode.None)
        {
            op.Aux = (byte)((int)cc - 1);
            var f = ins.FlowControl;
            // Only Jcc: LOOPE/LOOPNE also carry a condition code but decrement RCX first (SDM Vol. 2A LOOPcc).
            if (f == FlowControl.ConditionalBranch && k0 == OpKind.NearBranch64 && ins.IsJccShortOrNear)
            {
                op.Imm = ins.NearBranchTarget - ins.NextIP;
                return FastKind.Jcc;
            }

            if (ins.Mnemonic is >= Mnemonic.Cmova and <= Mnemonic.Cmovs && n == 2 && Gpr(ins.Op0Register, out op.Dst, out op.Size))
            {
                if (k1 == OpKind.Register)
                {
                    return Gpr(ins.Op1Register, out op.Src, out _) ? FastKind.CmovRR : FastKind.Generic;
                }

                return Memory(ins, ref op) ? FastKind.CmovRM : FastKind.Generic;
            }

            if (ins.Mnemonic is >= Mnemonic.Seta and <= Mnemonic.Sets && k0 == OpKind.Register && Gpr(ins.Op0Register, out op.Dst, out op.Size))
            {
                return FastKind.SetccR;
            }
        }

        return FastKind.Generic;
    }
}
