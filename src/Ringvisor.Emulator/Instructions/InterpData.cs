// Data movement (SDM Vol. 2: MOV, MOVZX, MOVSX, MOVSXD, LEA, CMOVcc, SETcc, BSWAP, MOVBE, XLAT, CBW/CWDE/CDQE,
// CWD/CDQ/CQO, LAHF, SAHF) and the flag instructions (CLC, STC, CMC, CLD, STD, CLI, STI).
using Iced.Intel;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    private void ExecMov(in Instruction ins)
    {
        var k0 = ins.GetOpKind(0);
        if (k0 == OpKind.Register)
        {
            var r0 = ins.Op0Register;
            if (r0.IsSegmentRegister())
            {
                ExecMovToSeg(ins);
                return;
            }

            if (r0.IsCR())
            {
                ExecMovToCr(ins);
                return;
            }

            if (r0.IsDR())
            {
                ExecMovToDr(ins);
                return;
            }

            if (ins.GetOpKind(1) == OpKind.Register)
            {
                var r1 = ins.Op1Register;
                if (r1.IsSegmentRegister())
                {
                    // MOV r, Sreg: a 32/64-bit destination gets the selector zero-extended.
                    WriteReg(r0, Seg[r1 - Register.ES].Selector);
                    return;
                }

                if (r1.IsCR())
                {
                    ExecMovFromCr(ins);
                    return;
                }

                if (r1.IsDR())
                {
                    ExecMovFromDr(ins);
                    return;
                }

                WriteReg(r0, ReadReg(r1));
                return;
            }

            int size = s_regSize[(int)r0];
            if (ReadOp(ins, 1, size, out ulong v))
            {
                WriteReg(r0, v);
            }

            return;
        }

        // Memory destination.
        if (ins.GetOpKind(1) == OpKind.Register && ins.Op1Register.IsSegmentRegister())
        {
            _ = WriteMem(MemoryLinear(ins), 2, Seg[ins.Op1Register - Register.ES].Selector);
            return;
        }

        int msize = ins.MemorySize.GetSize();
        if (ReadOp(ins, 1, msize, out ulong mv))
        {
            _ = WriteMem(MemoryLinear(ins), msize, mv);
        }
    }

    private void ExecMovzx(in Instruction ins, bool signExtend)
    {
        int srcSize = OpSize(ins, 1);
        if (!ReadOp(ins, 1, srcSize, out ulong v))
        {
            return;
        }

        if (signExtend)
        {
            int sh = 64 - srcSize * 8;
            v = (ulong)((long)(v << sh) >> sh);
        }

        WriteReg(ins.Op0Register, v);
    }

    private void ExecLea(in Instruction ins) => WriteReg(ins.Op0Register, EffectiveAddress(ins));

    private void ExecCmov(in Instruction ins, int cc)
    {
        var r = ins.Op0Register;
        int size = s_regSize[(int)r];
        // The source is read (and may fault) whether or not the condition holds.
        if (!ReadOp(ins, 1, size, out ulong v))
        {
            return;
        }

        if (Condition(cc))
        {
            WriteReg(r, v);
        }
        else if (size == 4)
        {
            // A 32-bit CMOV zero-extends its destination even when the condition is false.
            WriteReg(r, ReadReg(r));
        }
    }

    private void ExecSetcc(in Instruction ins, int cc) => WriteOp(ins, 0, 1, Condition(cc) ? 1UL : 0UL);

    private void ExecBswap(in Instruction ins)
    {
        var r = ins.Op0Register;
        ulong v = ReadReg(r);
        switch (s_regSize[(int)r])
        {
            case 8:
                WriteReg(r, System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v));
                break;
            case 4:
                WriteReg(r, System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((uint)v));
                break;
            default:
                // BSWAP r16 is undefined; Intel cores clear the register's low 16 bits.
                WriteReg(r, 0);
                break;
        }
    }

    private void ExecXlat(in Instruction ins)
    {
        int asz = AddressSize(ins);
        ulong off = Gpr[3] + (Gpr[0] & 0xFF);
        off = asz == 8 ? off : asz == 4 ? (uint)off : (ushort)off;
        if (ReadMem(Linear(ins.MemorySegment - Register.ES, off), 1, out ulong v))
        {
            Gpr[0] = (Gpr[0] & ~0xFFUL) | v;
        }
    }

    private void ExecSignExtendAcc(Mnemonic m)
    {
        switch (m)
        {
            case Mnemonic.Cbw:
                WriteReg(Register.AX, (ulong)(long)(sbyte)Gpr[0]);
                break;
            case Mnemonic.Cwde:
                WriteReg(Register.EAX, (ulong)(long)(short)Gpr[0]);
                break;
            case Mnemonic.Cdqe:
                Gpr[0] = (ulong)(long)(int)Gpr[0];
                break;
            case Mnemonic.Cwd:
                WriteReg(Register.DX, (short)Gpr[0] < 0 ? 0xFFFFUL : 0);
                break;
            case Mnemonic.Cdq:
                WriteReg(Register.EDX, (int)Gpr[0] < 0 ? 0xFFFF_FFFFUL : 0);
                break;
            default:
                Gpr[2] = (long)Gpr[0] < 0 ? ulong.MaxValue : 0;
                break;
        }
    }

    private void ExecLahf()
    {
        ulong f = MaterializeFlags();
        Gpr[0] = (Gpr[0] & ~0xFF00UL) | ((f & 0xD5 | 2) << 8);
    }

    private void ExecSahf()
    {
        ulong f = MaterializeFlags();
        ulong ah = (Gpr[0] >> 8) & 0xD5;
        _flags = (f & ~0xD5UL) | ah | 2;
    }

    private void ExecFlagOp(Mnemonic m)
    {
        switch (m)
        {
            case Mnemonic.Clc:
                PutFlag(FlagCf, false);
                break;
            case Mnemonic.Stc:
                PutFlag(FlagCf, true);
                break;
            case Mnemonic.Cmc:
                PutFlag(FlagCf, !GetCf());
                break;
            case Mnemonic.Cld:
                _flags &= ~FlagDf;
                break;
            case Mnemonic.Std:
                _flags |= FlagDf;
                break;
            case Mnemonic.Cli:
                if (!IoplAllowsInterruptFlag())
                {
                    _ = Gp();
                    return;
                }

                _flags &= ~FlagIf;
                break;
            case Mnemonic.Sti:
                if (!IoplAllowsInterruptFlag())
                {
                    _ = Gp();
                    return;
                }

                if ((_flags & FlagIf) == 0)
                {
                    // STI opens the interrupt window only after the next instruction (SDM STI).
                    _setShadow = true;
                }

                _flags |= FlagIf;
                _attention = true;
                break;
        }
    }

    /// <summary>CLI/STI are allowed when CPL ≤ IOPL (protected mode) or in real mode (VME/PVI not supported).</summary>
    private bool IoplAllowsInterruptFlag() => !_protected || _cpl <= Iopl;
}
