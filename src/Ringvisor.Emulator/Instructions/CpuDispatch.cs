// The interpreter's dispatch: one switch over Iced's mnemonic, each family in its own Interp*.cs file.
// Anything not handled raises #UD in the guest and is counted (BtStats.UndefinedMnemonics).
using Iced.Intel;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    private void Execute(in Instruction ins)
    {
        switch (ins.Mnemonic)
        {
            case Mnemonic.Mov: ExecMov(ins); break;
            case Mnemonic.Add: ExecAlu(ins, AluOp.Add); break;
            case Mnemonic.Or: ExecAlu(ins, AluOp.Or); break;
            case Mnemonic.Adc: ExecAlu(ins, AluOp.Adc); break;
            case Mnemonic.Sbb: ExecAlu(ins, AluOp.Sbb); break;
            case Mnemonic.And: ExecAlu(ins, AluOp.And); break;
            case Mnemonic.Sub: ExecAlu(ins, AluOp.Sub); break;
            case Mnemonic.Xor: ExecAlu(ins, AluOp.Xor); break;
            case Mnemonic.Cmp: ExecAlu(ins, AluOp.Cmp); break;
            case Mnemonic.Inc: ExecAlu(ins, AluOp.Inc); break;
            case Mnemonic.Dec: ExecAlu(ins, AluOp.Dec); break;
            case Mnemonic.Neg: ExecAlu(ins, AluOp.Neg); break;
            case Mnemonic.Not: ExecNot(ins); break;
            case Mnemonic.Test: ExecTest(ins); break;
            case Mnemonic.Xadd: ExecXadd(ins); break;
            case Mnemonic.Xchg: ExecXchg(ins); break;
            case Mnemonic.Cmpxchg: ExecCmpxchg(ins); break;
            case Mnemonic.Cmpxchg8b: ExecCmpxchg8b(ins); break;
            case Mnemonic.Cmpxchg16b: ExecCmpxchg16b(ins); break;
            case Mnemonic.Lea: ExecLea(ins); break;
            case Mnemonic.Movzx: ExecMovzx(ins, false); break;
            case Mnemonic.Movsx:
            case Mnemonic.Movsxd: ExecMovzx(ins, true); break;
            case Mnemonic.Nop:
            case Mnemonic.Pause:
            case Mnemonic.Endbr32:
            case Mnemonic.Endbr64:
            case Mnemonic.Lfence:
            case Mnemonic.Sfence:
            case Mnemonic.Prefetch:
            case Mnemonic.Prefetchnta:
            case Mnemonic.Prefetcht0:
            case Mnemonic.Prefetcht1:
            case Mnemonic.Prefetcht2:
            case Mnemonic.Prefetchw:
            case Mnemonic.Clflush:
                break;
            case Mnemonic.Mfence:
                // Guest stores are host stores: without a host fence a later guest load could pass an earlier
                // guest store through the host's store buffer, which MFENCE forbids (SDM Vol. 3A §8.2.5).
                Interlocked.MemoryBarrier();
                break;
            case Mnemonic.Jmp: ExecJmp(ins); break;
            case Mnemonic.Jo:
            case Mnemonic.Jno:
            case Mnemonic.Jb:
            case Mnemonic.Jae:
            case Mnemonic.Je:
            case Mnemonic.Jne:
            case Mnemonic.Jbe:
            case Mnemonic.Ja:
            case Mnemonic.Js:
            case Mnemonic.Jns:
            case Mnemonic.Jp:
            case Mnemonic.Jnp:
            case Mnemonic.Jl:
            case Mnemonic.Jge:
            case Mnemonic.Jle:
            case Mnemonic.Jg:
                ExecJcc(ins, (int)ins.ConditionCode - 1);
                break;
            case Mnemonic.Cmovo:
            case Mnemonic.Cmovno:
            case Mnemonic.Cmovb:
            case Mnemonic.Cmovae:
            case Mnemonic.Cmove:
            case Mnemonic.Cmovne:
            case Mnemonic.Cmovbe:
            case Mnemonic.Cmova:
            case Mnemonic.Cmovs:
            case Mnemonic.Cmovns:
            case Mnemonic.Cmovp:
            case Mnemonic.Cmovnp:
            case Mnemonic.Cmovl:
            case Mnemonic.Cmovge:
            case Mnemonic.Cmovle:
            case Mnemonic.Cmovg:
                ExecCmov(ins, (int)ins.ConditionCode - 1);
                break;
            case Mnemonic.Seto:
            case Mnemonic.Setno:
            case Mnemonic.Setb:
            case Mnemonic.Setae:
            case Mnemonic.Sete:
            case Mnemonic.Setne:
            case Mnemonic.Setbe:
            case Mnemonic.Seta:
            case Mnemonic.Sets:
            case Mnemonic.Setns:
            case Mnemonic.Setp:
            case Mnemonic.Setnp:
            case Mnemonic.Setl:
            case Mnemonic.Setge:
            case Mnemonic.Setle:
            case Mnemonic.Setg:
                ExecSetcc(ins, (int)ins.ConditionCode - 1);
                break;
            case Mnemonic.Jcxz: ExecJrcxz(ins, 2); break;
            case Mnemonic.Jecxz: ExecJrcxz(ins, 4); break;
            case Mnemonic.Jrcxz: ExecJrcxz(ins, 8); break;
            case Mnemonic.Loop:
            case Mnemonic.Loope:
            case Mnemonic.Loopne:
                ExecLoop(ins, ins.Mnemonic);
                break;
            case Mnemonic.Call: ExecCall(ins); break;
            case Mnemonic.Ret: ExecRet(ins); break;
            case Mnemonic.Retf: ExecRetFar(ins); break;
            case Mnemonic.Push: ExecPush(ins); break;
            case Mnemonic.Pop: ExecPop(ins); break;
            case Mnemonic.Pushf:
            case Mnemonic.Pushfd:
            case Mnemonic.Pushfq:
                ExecPushf(ins);
                break;
            case Mnemonic.Popf:
            case Mnemonic.Popfd:
            case Mnemonic.Popfq:
                ExecPopf(ins);
                break;
            case Mnemonic.Pusha:
            case Mnemonic.Pushad:
                ExecPusha(ins);
                break;
            case Mnemonic.Popa:
            case Mnemonic.Popad:
                ExecPopa(ins);
                break;
            case Mnemonic.Enter: ExecEnter(ins); break;
            case Mnemonic.Leave: ExecLeave(ins); break;
            case Mnemonic.Shl:
            case Mnemonic.Sal:
            case Mnemonic.Shr:
            case Mnemonic.Sar:
            case Mnemonic.Rol:
            case Mnemonic.Ror:
            case Mnemonic.Rcl:
            case Mnemonic.Rcr:
                ExecShift(ins, ins.Mnemonic);
                break;
            case Mnemonic.Shld: ExecShiftDouble(ins, true); break;
            case Mnemonic.Shrd: ExecShiftDouble(ins, false); break;
            case Mnemonic.Mul: ExecMul(ins); break;
            case Mnemonic.Imul: ExecImul(ins); break;
            case Mnemonic.Div: ExecDiv(ins, false); break;
            case Mnemonic.Idiv: ExecDiv(ins, true); break;
            case Mnemonic.Bt: ExecBt(ins, AluOp.Cmp); break;
            case Mnemonic.Bts: ExecBt(ins, AluOp.Bts); break;
            case Mnemonic.Btr: ExecBt(ins, AluOp.Btr); break;
            case Mnemonic.Btc: ExecBt(ins, AluOp.Btc); break;
            case Mnemonic.Bsf:
            case Mnemonic.Tzcnt:
                ExecBitScan(ins, false);
                break;
            case Mnemonic.Bsr:
            case Mnemonic.Lzcnt:
                ExecBitScan(ins, true);
                break;
            case Mnemonic.Popcnt: ExecPopcnt(ins); break;
            case Mnemonic.Bswap: ExecBswap(ins); break;
            case Mnemonic.Xlatb: ExecXlat(ins); break;
            case Mnemonic.Cbw:
            case Mnemonic.Cwde:
            case Mnemonic.Cdqe:
            case Mnemonic.Cwd:
            case Mnemonic.Cdq:
            case Mnemonic.Cqo:
                ExecSignExtendAcc(ins.Mnemonic);
                break;
            case Mnemonic.Lahf: ExecLahf(); break;
            case Mnemonic.Sahf: ExecSahf(); break;
            case Mnemonic.Clc:
            case Mnemonic.Stc:
            case Mnemonic.Cmc:
            case Mnemonic.Cld:
            case Mnemonic.Std:
            case Mnemonic.Cli:
            case Mnemonic.Sti:
                ExecFlagOp(ins.Mnemonic);
                break;
            case Mnemonic.Movsb:
            case Mnemonic.Movsw:
            case Mnemonic.Movsq:
            case Mnemonic.Stosb:
            case Mnemonic.Stosw:
            case Mnemonic.Stosd:
            case Mnemonic.Stosq:
            case Mnemonic.Lodsb:
            case Mnemonic.Lodsw:
            case Mnemonic.Lodsd:
            case Mnemonic.Lodsq:
            case Mnemonic.Cmpsb:
            case Mnemonic.Cmpsw:
            case Mnemonic.Cmpsq:
            case Mnemonic.Scasb:
            case Mnemonic.Scasw:
            case Mnemonic.Scasd:
            case Mnemonic.Scasq:
            case Mnemonic.Insb:
            case Mnemonic.Insw:
            case Mnemonic.Insd:
            case Mnemonic.Outsb:
            case Mnemonic.Outsw:
            case Mnemonic.Outsd:
                ExecString(ins, ins.Mnemonic);
                break;
            case Mnemonic.Movsd:
            case Mnemonic.Cmpsd:
                // MOVSD/CMPSD are both a string instruction and an SSE2 instruction.
                if (ins.Code is Code.Movsd_m32_m32 or Code.Cmpsd_m32_m32)
                {
                    ExecString(ins, ins.Mnemonic);
                }
                else
                {
                    ExecSimd(ins);
                }

                break;
            case Mnemonic.In: ExecIn(ins); break;
            case Mnemonic.Out: ExecOut(ins); break;
            case Mnemonic.Int:
            case Mnemonic.Int3:
            case Mnemonic.Into:
            case Mnemonic.Int1:
                ExecInt(ins, ins.Mnemonic);
                break;
            case Mnemonic.Iret:
            case Mnemonic.Iretd:
            case Mnemonic.Iretq:
                ExecIret(ins.Code);
                break;
            case Mnemonic.Hlt: ExecHlt(); break;
            case Mnemonic.Lds: ExecLoadFarPointer(ins, SegDs); break;
            case Mnemonic.Les: ExecLoadFarPointer(ins, SegEs); break;
            case Mnemonic.Lfs: ExecLoadFarPointer(ins, SegFs); break;
            case Mnemonic.Lgs: ExecLoadFarPointer(ins, SegGs); break;
            case Mnemonic.Lss: ExecLoadFarPointer(ins, SegSs); break;
            case Mnemonic.Lar: ExecLarLsl(ins, false); break;
            case Mnemonic.Lsl: ExecLarLsl(ins, true); break;
            case Mnemonic.Verr: ExecVerrVerw(ins, false); break;
            case Mnemonic.Verw: ExecVerrVerw(ins, true); break;
            case Mnemonic.Arpl: ExecArpl(ins); break;
            case Mnemonic.Bound: ExecBound(ins); break;
            case Mnemonic.Daa:
            case Mnemonic.Das:
            case Mnemonic.Aaa:
            case Mnemonic.Aas:
            case Mnemonic.Aam:
            case Mnemonic.Aad:
                ExecBcd(ins);
                break;
            case Mnemonic.Salc:
                Gpr[0] = (Gpr[0] & ~0xFFUL) | (GetCf() ? 0xFFUL : 0);
                break;
            default:
                ExecSystemOrSimd(ins);
                break;
        }
    }

    private void Undefined(in Instruction ins)
    {
        if (_host.Options.CollectStats || _trace is not null)
        {
            _stats.Undefined(ins.Code == Code.INVALID ? "(invalid encoding)" : ins.Mnemonic.ToString());
        }

        _ = Ud();
    }
}
