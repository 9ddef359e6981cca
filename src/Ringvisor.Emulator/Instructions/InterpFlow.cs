// Control transfer (SDM Vol. 2: JMP, Jcc, JrCXZ, LOOP/LOOPcc, CALL, RET, ENTER, LEAVE, HLT). Near targets are
// rebased from the page-offset decode (see CpuLoop) and checked for canonical form in 64-bit mode (#GP(0)).
using Iced.Intel;
using Ringvisor.Emulator.Exceptions;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    private static readonly byte[] s_counterSize = BuildCounterSizes();

    private static byte[] BuildCounterSizes()
    {
        var names = Enum.GetNames<Code>();
        var values = Enum.GetValues<Code>();
        var t = new byte[values.Length + 1];
        for (int i = 0; i < names.Length; i++)
        {
            string n = names[i];
            byte s = n.EndsWith("_RCX", StringComparison.Ordinal) ? (byte)8 : n.EndsWith("_ECX", StringComparison.Ordinal) ? (byte)4 : n.EndsWith("_CX", StringComparison.Ordinal) ? (byte)2 : (byte)0;
            t[(int)values[i]] = s;
        }

        return t;
    }

    /// <summary>Sets the next RIP to a branch target, with the 64-bit canonical check.</summary>
    private bool Branch(ulong target)
    {
        if (_bitness == 64 && !IsCanonical(target))
        {
            return Gp(0);
        }

        _nextRip = target;
        return true;
    }

    private void ExecJmp(in Instruction ins)
    {
        var k = ins.GetOpKind(0);
        if (k is OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64)
        {
            _ = Branch(BranchTarget(ins));
            return;
        }

        if (k is OpKind.FarBranch16 or OpKind.FarBranch32 || (k == OpKind.Memory && ins.IsJmpFarIndirect))
        {
            ExecFarJmpCall(ins, call: false);
            return;
        }

        int size = OpSize(ins);
        if (ReadOp(ins, 0, size, out ulong t))
        {
            _ = Branch(t);
        }
    }

    private void ExecJcc(in Instruction ins, int cc)
    {
        if (Condition(cc))
        {
            _ = Branch(BranchTarget(ins));
        }
    }

    private void ExecJrcxz(in Instruction ins, int counterSize)
    {
        if ((Gpr[1] & SizeMask(counterSize)) == 0)
        {
            _ = Branch(BranchTarget(ins));
        }
    }

    private void ExecLoop(in Instruction ins, Mnemonic m)
    {
        int cs = s_counterSize[(int)ins.Code];
        if (cs == 0)
        {
            cs = _bitness == 64 ? 8 : _bitness / 8;
        }

        ulong mask = SizeMask(cs);
        ulong c = (Gpr[1] - 1) & mask;
        Gpr[1] = (Gpr[1] & ~mask) | c;
        bool take = c != 0 && m switch
        {
            Mnemonic.Loope => GetZf(),
            Mnemonic.Loopne => !GetZf(),
            _ => true,
        };
        if (take)
        {
            _ = Branch(BranchTarget(ins));
        }
    }

    private void ExecCall(in Instruction ins)
    {
        var k = ins.GetOpKind(0);
        if (k is OpKind.FarBranch16 or OpKind.FarBranch32 || (k == OpKind.Memory && ins.IsCallFarIndirect))
        {
            ExecFarJmpCall(ins, call: true);
            return;
        }

        int opSize = StackOpSize(ins);
        ulong target;
        if (k is OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64)
        {
            target = BranchTarget(ins);
        }
        else if (!ReadOp(ins, 0, OpSize(ins), out target))
        {
            return;
        }

        if (_bitness == 64 && !IsCanonical(target))
        {
            _ = Gp(0);
            return;
        }

        if (Push(_nextRip, opSize))
        {
            _nextRip = target;
        }
    }

    private void ExecRet(in Instruction ins)
    {
        int opSize = ins.Code is Code.Retnw or Code.Retnw_imm16 ? 2 : ins.Code is Code.Retnd or Code.Retnd_imm16 ? 4 : 8;
        if (!PeekStack(0, opSize, out ulong t))
        {
            return;
        }

        if (_bitness == 64 && !IsCanonical(t))
        {
            _ = Gp(0);
            return;
        }

        ulong imm = ins.OpCount > 0 ? ins.Immediate16 : 0UL;
        SetSp(StackWrap(Gpr[4] + (ulong)opSize + imm));
        _nextRip = t;
    }

    private void ExecEnter(in Instruction ins)
    {
        int opSize = ins.Code == Code.Enterw_imm16_imm8 ? 2 : ins.Code == Code.Enterd_imm16_imm8 ? 4 : 8;
        ulong alloc = ins.Immediate16;
        int level = ins.Immediate8_2nd & 31;
        ulong sp0 = Gpr[4];
        ulong rbp = Gpr[5];
        if (!Push(rbp, opSize))
        {
            return;
        }

        ulong frame = StackWrap(Gpr[4]);
        if (level > 0)
        {
            ulong bp = rbp;
            for (int i = 1; i < level; i++)
            {
                bp = StackWrap(bp - (ulong)opSize);
                if (!ReadMem(Linear(SegSs, bp), opSize, out ulong v) || !Push(v, opSize))
                {
                    Gpr[4] = sp0;
                    return;
                }
            }

            if (!Push(frame, opSize))
            {
                Gpr[4] = sp0;
                return;
            }
        }

        ulong newSp = StackWrap(Gpr[4] - alloc);
        // The final stack pointer must be writable (ENTER faults before committing).
        if (alloc != 0 && !ReadMem(Linear(SegSs, newSp), 1, out _))
        {
            Gpr[4] = sp0;
            return;
        }

        WriteReg(opSize == 8 ? Register.RBP : opSize == 4 ? Register.EBP : Register.BP, frame);
        SetSp(newSp);
    }

    private void ExecLeave(in Instruction ins)
    {
        int opSize = ins.Code == Code.Leavew ? 2 : ins.Code == Code.Leaved ? 4 : 8;
        ulong oldSp = Gpr[4];
        SetSp(Gpr[5]);
        if (!Pop(opSize, out ulong bp))
        {
            Gpr[4] = oldSp;
            return;
        }

        WriteReg(opSize == 8 ? Register.RBP : opSize == 4 ? Register.EBP : Register.BP, bp);
    }

    private void ExecHlt()
    {
        if (_cpl != 0)
        {
            _ = Gp(0);
            return;
        }

        _halted = true;
        _stopBatch = true;
    }

    private void ExecInt(in Instruction ins, Mnemonic m)
    {
        switch (m)
        {
            case Mnemonic.Int3:
                (_softwareVector, _softwareSource) = (ExceptionVector.Breakpoint, ExceptionSource.SoftwareException);
                break;
            case Mnemonic.Into:
                if (!GetOf())
                {
                    return;
                }

                (_softwareVector, _softwareSource) = (ExceptionVector.Overflow, ExceptionSource.SoftwareException);
                break;
            case Mnemonic.Int1:
                (_softwareVector, _softwareSource) = (ExceptionVector.Debug, ExceptionSource.PrivilegedSoftware);
                break;
            default:
                (_softwareVector, _softwareSource) = (ins.Immediate8, ExceptionSource.SoftwareInterrupt);
                break;
        }
    }
}
