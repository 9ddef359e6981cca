// Legacy-mode leftovers (SDM Vol. 2: BOUND, DAA/DAS/AAA/AAS/AAM/AAD). Iced only decodes them outside 64-bit mode.
using Iced.Intel;
using Ringvisor.Emulator.Exceptions;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    private void ExecBound(in Instruction ins)
    {
        int size = s_regSize[(int)ins.Op0Register];
        ulong la = MemoryLinear(ins);
        if (!ReadMem(la, size, out ulong lo) || !ReadMem(AddressWrap(la + (ulong)size), size, out ulong hi))
        {
            return;
        }

        long v = SignExtend(ReadReg(ins.Op0Register), size);
        if (v < SignExtend(lo, size) || v > SignExtend(hi, size))
        {
            _ = Fault(ExceptionVector.BoundRange);
        }
    }

    private void ExecBcd(in Instruction ins)
    {
        ulong al = Gpr[0] & 0xFF;
        ulong ah = (Gpr[0] >> 8) & 0xFF;
        bool cf = GetCf();
        bool af = (MaterializeFlags() & FlagAf) != 0;
        switch (ins.Mnemonic)
        {
            case Mnemonic.Daa:
            case Mnemonic.Das:
                {
                    bool daa = ins.Mnemonic == Mnemonic.Daa;
                    ulong oldAl = al;
                    bool newCf = false;
                    bool newAf = false;
                    if ((al & 0xF) > 9 || af)
                    {
                        al = daa ? al + 6 : al - 6;
                        newCf = cf || (daa ? al > 0xFF : oldAl < 6);
                        newAf = true;
                        al &= 0xFF;
                    }

                    if (oldAl > 0x99 || cf)
                    {
                        al = (daa ? al + 0x60 : al - 0x60) & 0xFF;
                        newCf = true;
                    }

                    Gpr[0] = (Gpr[0] & ~0xFFUL) | al;
                    EagerFlags(al, 1, newCf, false);
                    if (newAf)
                    {
                        _flags |= FlagAf;
                    }

                    break;
                }

            case Mnemonic.Aaa:
            case Mnemonic.Aas:
                {
                    bool adjust = (al & 0xF) > 9 || af;
                    if (adjust)
                    {
                        if (ins.Mnemonic == Mnemonic.Aaa)
                        {
                            ulong ax = (Gpr[0] & 0xFFFF) + 0x106;
                            Gpr[0] = (Gpr[0] & ~0xFFFFUL) | (ax & 0xFF0F);
                        }
                        else
                        {
                            ulong ax = (Gpr[0] & 0xFFFF) - 6;
                            ulong nah = ((ax >> 8) - 1) & 0xFF;
                            Gpr[0] = (Gpr[0] & ~0xFFFFUL) | (nah << 8) | (ax & 0x0F);
                        }
                    }
                    else
                    {
                        Gpr[0] &= ~0xF0UL;
                    }

                    EagerFlags(Gpr[0] & 0xFF, 1, adjust, false);
                    if (adjust)
                    {
                        _flags |= FlagAf;
                    }

                    break;
                }

            case Mnemonic.Aam:
                {
                    ulong imm = ins.Immediate8;
                    if (imm == 0)
                    {
                        _ = Fault(ExceptionVector.DivideError);
                        return;
                    }

                    ulong nah = al / imm;
                    ulong nal = al % imm;
                    Gpr[0] = (Gpr[0] & ~0xFFFFUL) | (nah << 8) | nal;
                    EagerFlags(nal, 1, false, false);
                    break;
                }

            default:
                {
                    ulong imm = ins.Immediate8;
                    ulong nal = (al + ah * imm) & 0xFF;
                    Gpr[0] = (Gpr[0] & ~0xFFFFUL) | nal;
                    EagerFlags(nal, 1, false, false);
                    break;
                }
        }
    }
}
