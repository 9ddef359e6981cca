// Stack instructions (SDM Vol. 2: PUSH, POP, PUSHF/POPF, PUSHA/POPA). The stack-pointer width comes from the mode
// and SS.B; the operand size from the instruction (64-bit mode defaults to 8 bytes).
using Iced.Intel;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    private void ExecPush(in Instruction ins)
    {
        int size = StackOpSize(ins);
        ulong v;
        if (ins.GetOpKind(0) == OpKind.Register && ins.Op0Register.IsSegmentRegister())
        {
            v = Seg[ins.Op0Register - Register.ES].Selector;
        }
        else if (!ReadOp(ins, 0, size, out v))
        {
            return;
        }

        _ = Push(v & SizeMask(size), size);
    }

    private void ExecPop(in Instruction ins)
    {
        if (ins.GetOpKind(0) == OpKind.Register)
        {
            var r = ins.Op0Register;
            if (r.IsSegmentRegister())
            {
                ExecPopSeg(ins);
                return;
            }

            int rs = s_regSize[(int)r];
            if (Pop(rs, out ulong rv))
            {
                WriteReg(r, rv);
            }

            return;
        }

        int size = StackOpSize(ins);
        if (!PeekStack(0, size, out ulong v))
        {
            return;
        }

        // The destination's address is computed after the stack pointer moves (SDM POP).
        ulong oldSp = Gpr[4];
        SetSp(StackWrap(Gpr[4] + (ulong)size));
        if (!WriteMem(MemoryLinear(ins), size, v))
        {
            Gpr[4] = oldSp;
        }
    }

    private void ExecPushf(in Instruction ins)
    {
        int size = StackOpSize(ins);
        if ((_flags & FlagVm) != 0 && Iopl < 3)
        {
            _ = Gp(0);
            return;
        }

        _ = Push(GetRflags() & ~(FlagVm | FlagRf) & SizeMask(size), size);
    }

    private void ExecPopf(in Instruction ins)
    {
        int size = StackOpSize(ins);
        if ((_flags & FlagVm) != 0 && Iopl < 3)
        {
            _ = Gp(0);
            return;
        }

        if (!Pop(size, out ulong v))
        {
            return;
        }

        ulong old = GetRflags();
        int cpl = _protected ? _cpl : 0;
        ApplyPoppedFlags(v & ~FlagRf, size, cpl, old);
        // POPF never changes VM, VIF or VIP, and clears RF.
        _flags = (_flags & ~(FlagVm | FlagVif | FlagVip | FlagRf)) | (old & (FlagVm | FlagVif | FlagVip));
    }

    private void ExecPusha(in Instruction ins)
    {
        int size = ins.Code == Code.Pushaw ? 2 : 4;
        ulong sp0 = Gpr[4];
        ulong mask = SizeMask(size);
        ReadOnlySpan<int> order = [0, 1, 2, 3, 4, 5, 6, 7];
        foreach (int r in order)
        {
            ulong v = (r == 4 ? sp0 : Gpr[r]) & mask;
            if (!Push(v, size))
            {
                Gpr[4] = sp0;
                return;
            }
        }
    }

    private void ExecPopa(in Instruction ins)
    {
        int size = ins.Code == Code.Popaw ? 2 : 4;
        Span<ulong> vals = stackalloc ulong[8];
        for (int i = 0; i < 8; i++)
        {
            if (!PeekStack(i * size, size, out vals[7 - i]))
            {
                return;
            }
        }

        for (int r = 0; r < 8; r++)
        {
            if (r == 4)
            {
                continue;
            }

            if (size == 4)
            {
                Gpr[r] = (uint)vals[r];
            }
            else
            {
                Gpr[r] = (Gpr[r] & ~0xFFFFUL) | (ushort)vals[r];
            }
        }

        SetSp(StackWrap(Gpr[4] + (ulong)(8 * size)));
    }
}
