// Operand access for decoded instructions: Iced register → GPR slot tables, effective addresses (SDM Vol. 1 §3.7.5),
// segment bases (Vol. 3A §3.4, flat in 64-bit mode except FS/GS), and the stack.
using System.Runtime.CompilerServices;
using Iced.Intel;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    private const int RegisterTableSize = 512;
    private static readonly byte[] s_regIndex = new byte[RegisterTableSize];
    private static readonly byte[] s_regShift = new byte[RegisterTableSize];
    private static readonly byte[] s_regSize = new byte[RegisterTableSize];
    private static readonly ulong[] s_regMask = new ulong[RegisterTableSize];

    static Cpu()
    {
        for (int r = 0; r < RegisterTableSize; r++)
        {
            var reg = (Register)r;
            if (!Enum.IsDefined(reg) || reg == Register.None || !reg.IsGPR())
            {
                continue;
            }

            var full = reg.GetFullRegister();
            s_regIndex[r] = (byte)(full - Register.RAX);
            s_regSize[r] = (byte)reg.GetSize();
            s_regShift[r] = (byte)(reg is >= Register.AH and <= Register.BH ? 8 : 0);
            s_regMask[r] = SizeMask(reg.GetSize());
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong ReadReg(Register r)
    {
        int i = (int)r;
        return (Gpr[s_regIndex[i]] >> s_regShift[i]) & s_regMask[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void WriteReg(Register r, ulong v)
    {
        int i = (int)r;
        ref ulong g = ref Gpr[s_regIndex[i]];
        if (s_regSize[i] == 4)
        {
            g = (uint)v;
        }
        else
        {
            ulong m = s_regMask[i] << s_regShift[i];
            g = (g & ~m) | ((v << s_regShift[i]) & m);
        }
    }

    internal static int RegSize(Register r) => s_regSize[(int)r];

    /// <summary>Size in bytes of operand 0 (register or memory).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int OpSize(in Instruction ins, int n = 0)
    {
        var k = ins.GetOpKind(n);
        if (k == OpKind.Register)
        {
            return s_regSize[(int)ins.GetOpRegister(n)];
        }

        return k == OpKind.Memory ? ins.MemorySize.GetSize() : 0;
    }

    /// <summary>Offset (effective address) of the instruction's explicit memory operand, wrapped to the address size.</summary>
    internal ulong EffectiveAddress(in Instruction ins)
    {
        ulong ea = ins.MemoryDisplacement64;
        var b = ins.MemoryBase;
        var x = ins.MemoryIndex;
        int asz;
        if (b != Register.None)
        {
            if (b == Register.RIP)
            {
                return _nextRip + (ea - ins.NextIP);
            }

            if (b == Register.EIP)
            {
                return (uint)(_nextRip + (ea - ins.NextIP));
            }

            ea += ReadReg(b);
            asz = s_regSize[(int)b];
        }
        else if (x != Register.None)
        {
            asz = s_regSize[(int)x];
        }
        else
        {
            return ea;
        }

        if (x != Register.None)
        {
            ea += ReadReg(x) * (ulong)ins.MemoryIndexScale;
        }

        return asz == 8 ? ea : asz == 4 ? (uint)ea : (ushort)ea;
    }

    /// <summary>Address size in bytes of the explicit memory operand.</summary>
    internal int AddressSize(in Instruction ins)
    {
        var b = ins.MemoryBase;
        if (b == Register.RIP)
        {
            return 8;
        }

        if (b == Register.EIP)
        {
            return 4;
        }

        if (b != Register.None)
        {
            return s_regSize[(int)b];
        }

        var x = ins.MemoryIndex;
        if (x != Register.None)
        {
            return s_regSize[(int)x];
        }

        int d = ins.MemoryDisplSize;
        return d is 2 or 4 or 8 ? d : _bitness / 8;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong SegBase(int seg) => _bitness == 64 && seg < SegFs ? 0 : Seg[seg].Base;

    /// <summary>Linear address of segment:offset; wraps at 4 GiB outside 64-bit mode.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong Linear(int seg, ulong offset)
    {
        _stackSegment = seg == SegSs;
        if (_bitness == 64)
        {
            return seg < SegFs ? offset : Seg[seg].Base + offset;
        }

        return (uint)(Seg[seg].Base + offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong MemoryLinear(in Instruction ins) => Linear(ins.MemorySegment - Register.ES, EffectiveAddress(ins));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool ReadOp(in Instruction ins, int n, int size, out ulong v)
    {
        switch (ins.GetOpKind(n))
        {
            case OpKind.Register:
                v = ReadReg(ins.GetOpRegister(n));
                return true;
            case OpKind.Memory:
                return ReadMem(MemoryLinear(ins), size, out v);
            default:
                v = ins.GetImmediate(n) & SizeMask(size);
                return true;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool WriteOp(in Instruction ins, int n, int size, ulong v)
    {
        if (ins.GetOpKind(n) == OpKind.Register)
        {
            WriteReg(ins.GetOpRegister(n), v);
            return true;
        }

        return WriteMem(MemoryLinear(ins), size, v);
    }

    // ---- stack ---------------------------------------------------------------------------------------------------

    /// <summary>Stack-pointer width: 8 in 64-bit mode, else SS.B selects 4 or 2 (SDM Vol. 1 §6.2.3).</summary>
    internal int StackAddrSize => _bitness == 64 ? 8 : Seg[SegSs].DefaultBig ? 4 : 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong StackWrap(ulong sp) => _bitness == 64 ? sp : Seg[SegSs].DefaultBig ? (uint)sp : (ushort)sp;

    internal void SetSp(ulong sp)
    {
        int s = StackAddrSize;
        if (s == 8)
        {
            Gpr[4] = sp;
        }
        else if (s == 4)
        {
            Gpr[4] = (uint)sp;
        }
        else
        {
            Gpr[4] = (Gpr[4] & ~0xFFFFUL) | (ushort)sp;
        }
    }

    internal bool Push(ulong v, int size)
    {
        ulong sp = StackWrap(Gpr[4] - (ulong)size);
        if (!WriteMem(Linear(SegSs, sp), size, v))
        {
            return false;
        }

        SetSp(sp);
        return true;
    }

    /// <summary>Reads the value at the top of the stack plus <paramref name="offset"/> without moving the stack pointer.</summary>
    internal bool PeekStack(int offset, int size, out ulong v) =>
        ReadMem(Linear(SegSs, StackWrap(Gpr[4] + (ulong)offset)), size, out v);

    internal bool Pop(int size, out ulong v)
    {
        if (!PeekStack(0, size, out v))
        {
            return false;
        }

        SetSp(StackWrap(Gpr[4] + (ulong)size));
        return true;
    }

    /// <summary>Operand size of near branches and stack pushes of the current instruction (64-bit mode defaults to 8).</summary>
    internal int StackOpSize(in Instruction ins)
    {
        int s = ins.StackPointerIncrement;
        return s < 0 ? -s : s;
    }
}
