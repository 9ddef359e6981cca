// Fast paths for pre-decoded hot forms of 64-bit code (Decoding/FastOp). Semantics are identical to the generic
// handlers in the other Interp*.cs files, which remain the reference; this file only avoids Iced's operand
// accessors and generic operand plumbing.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Iced.Intel;
using Ringvisor.Emulator.Decoding;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong RdGpr(int i, int size) => Gpr[i] & SizeMask(size);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void WrGpr(int i, int size, ulong v)
    {
        switch (size)
        {
            case 8:
                Gpr[i] = v;
                break;
            case 4:
                Gpr[i] = (uint)v;
                break;
            case 2:
                Gpr[i] = (Gpr[i] & ~0xFFFFUL) | (ushort)v;
                break;
            default:
                Gpr[i] = (Gpr[i] & ~0xFFUL) | (byte)v;
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong FastLinear(ref FastOp op)
    {
        ulong ea = (ulong)op.Disp;
        if (op.Base == FastOp.RipBase)
        {
            ea += _nextRip;
        }
        else if (op.Base != FastOp.NoReg)
        {
            ea += Gpr[op.Base];
        }

        if (op.Index != FastOp.NoReg)
        {
            ea += Gpr[op.Index] << op.Scale;
        }

        if (op.AddrSize == 4)
        {
            ea = (uint)ea;
        }

        _stackSegment = op.Seg == SegSs;
        return op.Seg >= SegFs ? Seg[op.Seg].Base + ea : ea;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void FastAlu(ref FastOp op, ulong a, ulong b)
    {
        var aop = (AluOp)op.Aux;
        int size = op.Size;
        bool cf = (aop == AluOp.Adc || aop == AluOp.Sbb) && GetCf();
        ulong res = AluCompute(aop, a, b, cf) & SizeMask(size);
        if (aop != AluOp.Cmp)
        {
            WrGpr(op.Dst, size, res);
        }

        AluFlags(aop, a, b, res, size, cf);
    }

    /// <summary>IMUL r32/r64 truncating forms: CF = OF = the signed product does not fit (SDM IMUL).</summary>
    private void FastImul(ref FastOp op, ulong x, ulong y)
    {
        if (op.Size == 8)
        {
            long hi = Math.BigMul((long)x, (long)y, out long lo);
            Gpr[op.Dst] = (ulong)lo;
            bool ovf = hi != (lo >> 63);
            EagerFlags((ulong)lo, 8, ovf, ovf);
            return;
        }

        long p = (long)(int)x * (int)y;
        Gpr[op.Dst] = (uint)p;
        bool of = p != (int)p;
        EagerFlags((ulong)p, 4, of, of);
    }

    private void ExecFast(ref FastOp op)
    {
        switch (op.Kind)
        {
            case FastKind.Nop:
                return;
            case FastKind.MovRR:
                WrGpr(op.Dst, op.Size, Gpr[op.Src]);
                return;
            case FastKind.MovRI:
                WrGpr(op.Dst, op.Size, op.Imm);
                return;
            case FastKind.MovRM:
                {
                    if (ReadMem(FastLinear(ref op), op.Size, out ulong v))
                    {
                        WrGpr(op.Dst, op.Size, v);
                    }

                    return;
                }

            case FastKind.MovMR:
                _ = WriteMem(FastLinear(ref op), op.Size, Gpr[op.Src]);
                return;
            case FastKind.MovMI:
                _ = WriteMem(FastLinear(ref op), op.Size, op.Imm);
                return;
            case FastKind.AluRR:
                FastAlu(ref op, RdGpr(op.Dst, op.Size), RdGpr(op.Src, op.Size));
                return;
            case FastKind.AluRI:
                FastAlu(ref op, RdGpr(op.Dst, op.Size), op.Imm);
                return;
            case FastKind.AluRM:
                {
                    if (ReadMem(FastLinear(ref op), op.Size, out ulong b))
                    {
                        FastAlu(ref op, RdGpr(op.Dst, op.Size), b);
                    }

                    return;
                }

            case FastKind.AluMR:
            case FastKind.AluMI:
                {
                    ulong la = FastLinear(ref op);
                    if (!ReadMem(la, op.Size, out ulong a))
                    {
                        return;
                    }

                    ulong b = op.Kind == FastKind.AluMR ? RdGpr(op.Src, op.Size) : op.Imm;
                    var aop = (AluOp)op.Aux;
                    bool cf = (aop == AluOp.Adc || aop == AluOp.Sbb) && GetCf();
                    ulong res = AluCompute(aop, a, b, cf) & SizeMask(op.Size);
                    if (aop != AluOp.Cmp && !WriteMem(la, op.Size, res))
                    {
                        return;
                    }

                    AluFlags(aop, a, b, res, op.Size, cf);
                    return;
                }

            case FastKind.TestRR:
                {
                    ulong r = RdGpr(op.Dst, op.Size) & Gpr[op.Src];
                    SetLazy(FlagOp.Logic, 0, 0, r, op.Size);
                    return;
                }

            case FastKind.TestRI:
                SetLazy(FlagOp.Logic, 0, 0, RdGpr(op.Dst, op.Size) & op.Imm, op.Size);
                return;
            case FastKind.TestMR:
            case FastKind.TestMI:
                {
                    if (ReadMem(FastLinear(ref op), op.Size, out ulong a))
                    {
                        ulong b = op.Kind == FastKind.TestMR ? Gpr[op.Src] : op.Imm;
                        SetLazy(FlagOp.Logic, 0, 0, a & b & SizeMask(op.Size), op.Size);
                    }

                    return;
                }

            case FastKind.MovzxRR:
                WrGpr(op.Dst, op.Size, Gpr[op.Src] & SizeMask(op.SrcSize));
                return;
            case FastKind.MovsxRR:
                WrGpr(op.Dst, op.Size, (ulong)SignExtend(Gpr[op.Src], op.SrcSize));
                return;
            case FastKind.MovzxRM:
            case FastKind.MovsxRM:
                {
                    if (ReadMem(FastLinear(ref op), op.SrcSize, out ulong v))
                    {
                        WrGpr(op.Dst, op.Size, op.Kind == FastKind.MovsxRM ? (ulong)SignExtend(v, op.SrcSize) : v);
                    }

                    return;
                }

            case FastKind.Lea:
                {
                    ulong ea = (ulong)op.Disp;
                    if (op.Base == FastOp.RipBase)
                    {
                        ea += _nextRip;
                    }
                    else if (op.Base != FastOp.NoReg)
                    {
                        ea += Gpr[op.Base];
                    }

                    if (op.Index != FastOp.NoReg)
                    {
                        ea += Gpr[op.Index] << op.Scale;
                    }

                    if (op.AddrSize == 4)
                    {
                        ea = (uint)ea;
                    }

                    WrGpr(op.Dst, op.Size, ea);
                    return;
                }

            case FastKind.IncR:
            case FastKind.DecR:
                {
                    ulong a = RdGpr(op.Dst, op.Size);
                    bool inc = op.Kind == FastKind.IncR;
                    ulong res = (inc ? a + 1 : a - 1) & SizeMask(op.Size);
                    _fCarryIn = GetCf();
                    WrGpr(op.Dst, op.Size, res);
                    SetLazy(inc ? FlagOp.Inc : FlagOp.Dec, a, 1, res, op.Size);
                    return;
                }

            case FastKind.Jcc:
                if (Condition(op.Aux))
                {
                    _ = Branch(_nextRip + op.Imm);
                }

                return;
            case FastKind.Jmp:
                _ = Branch(_nextRip + op.Imm);
                return;
            case FastKind.CallRel:
                {
                    ulong t = _nextRip + op.Imm;
                    if (!IsCanonical(t))
                    {
                        _ = Gp(0);
                        return;
                    }

                    ulong sp = Gpr[4] - 8;
                    if (WriteMem(Linear(SegSs, sp), 8, _nextRip))
                    {
                        Gpr[4] = sp;
                        _nextRip = t;
                    }

                    return;
                }

            case FastKind.Ret:
                {
                    ulong sp = Gpr[4];
                    if (!ReadMem(Linear(SegSs, sp), 8, out ulong t))
                    {
                        return;
                    }

                    if (!IsCanonical(t))
                    {
                        _ = Gp(0);
                        return;
                    }

                    Gpr[4] = sp + 8;
                    _nextRip = t;
                    return;
                }

            case FastKind.PushR:
                {
                    ulong v = Gpr[op.Src];
                    ulong sp = Gpr[4] - 8;
                    if (WriteMem(Linear(SegSs, sp), 8, v))
                    {
                        Gpr[4] = sp;
                    }

                    return;
                }

            case FastKind.PopR:
                {
                    ulong sp = Gpr[4];
                    if (ReadMem(Linear(SegSs, sp), 8, out ulong v))
                    {
                        Gpr[4] = sp + 8;
                        Gpr[op.Dst] = v;
                    }

                    return;
                }

            case FastKind.ShiftRI:
                {
                    int size = op.Size;
                    int count = (int)op.Imm & (size == 8 ? 0x3F : 0x1F);
                    ulong a = RdGpr(op.Dst, size);
                    if (count == 0)
                    {
                        WrGpr(op.Dst, size, a);
                        return;
                    }

                    ulong mask = SizeMask(size);
                    switch (op.Aux)
                    {
                        case 0:
                            {
                                ulong res = (a << count) & mask;
                                WrGpr(op.Dst, size, res);
                                SetLazy(FlagOp.Shl, a, (ulong)count, res, size);
                                return;
                            }

                        case 1:
                            {
                                ulong res = a >> count;
                                WrGpr(op.Dst, size, res);
                                SetLazy(FlagOp.Shr, a, (ulong)count, res, size);
                                return;
                            }

                        default:
                            {
                                long sa = SignExtend(a, size);
                                ulong res = (ulong)(sa >> Math.Min(count, 63)) & mask;
                                WrGpr(op.Dst, size, res);
                                SetLazy(FlagOp.Sar, (ulong)sa, (ulong)count, res, size);
                                return;
                            }
                    }
                }

            case FastKind.CmovRR:
                {
                    ulong v = Condition(op.Aux) ? Gpr[op.Src] : Gpr[op.Dst];
                    WrGpr(op.Dst, op.Size, v);
                    return;
                }

            case FastKind.CmovRM:
                {
                    if (!ReadMem(FastLinear(ref op), op.Size, out ulong v))
                    {
                        return;
                    }

                    WrGpr(op.Dst, op.Size, Condition(op.Aux) ? v : Gpr[op.Dst]);
                    return;
                }

            case FastKind.ImulRR:
                FastImul(ref op, Gpr[op.Dst], Gpr[op.Src]);
                return;
            case FastKind.ImulRRI:
                FastImul(ref op, Gpr[op.Src], op.Imm);
                return;
            case FastKind.ImulRM:
                {
                    if (ReadMem(FastLinear(ref op), op.Size, out ulong v))
                    {
                        FastImul(ref op, Gpr[op.Dst], v);
                    }

                    return;
                }

            case FastKind.SetccR:
                WrGpr(op.Dst, 1, Condition(op.Aux) ? 1UL : 0UL);
                return;
            default:
                // Generic forms go to Execute with their kept Iced instruction (Step); every other kind is handled above.
                throw new UnreachableException($"fast form {op.Kind} has no handler");
        }
    }
}
