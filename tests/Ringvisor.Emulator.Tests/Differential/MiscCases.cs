// Small instructions the other families leave out: CBW/CWDE/CDQE, CWD/CDQ/CQO, LAHF/SAHF, CLC/STC/CMC, CLD/STD,
// XLATB, ENTER/LEAVE, CALL/RET (near, with an immediate), MOVBE is not advertised and left out, and string
// instructions with a 32-bit address size (0x67: ESI/EDI/ECX wrap at 4 GiB).
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class MiscCases
{
    public static IEnumerable<DiffCase> Random(int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var c = One(rng);
            c.Origin = $"MiscCases.Random({seed}) #{i}";
            yield return c;
        }
    }

    private static DiffCase One(Random rng)
    {
        var c = DiffCase.Randomized(rng);
        int which = rng.Next(16);
        c.Gpr[3] = DiffLayout.Data + 0x800 + (ulong)rng.Next(0x400); // RBX for XLATB
        c.Name = which switch
        {
            0 => "cbw", 1 => "cwde", 2 => "cdqe", 3 => "cwd", 4 => "cdq", 5 => "cqo", 6 => "lahf", 7 => "sahf",
            8 => "clc/stc/cmc", 9 => "cld/std", 10 => "xlatb", 11 => "enter/leave", 12 => "call/ret imm",
            13 => "a32 rep stosb", 14 => "a32 lodsd", _ => "a32 rep movsb",
        };
        if (which >= 13)
        {
            // 32-bit addresses: the upper halves of RSI/RDI/RCX are ignored and cleared by the update.
            c.Gpr[6] = ((ulong)rng.Next() << 32) | (DiffLayout.Data + 0x1000 + (ulong)rng.Next(0x800));
            c.Gpr[7] = ((ulong)rng.Next() << 32) | (DiffLayout.Data + 0x2000 + (ulong)rng.Next(0x800));
            c.Gpr[1] = ((ulong)rng.Next() << 32) | (uint)rng.Next(20);
        }

        int pattern = rng.Next(8);
        c.Body = a =>
        {
            switch (which)
            {
                case 0: a.cbw(); break;
                case 1: a.cwde(); break;
                case 2: a.cdqe(); break;
                case 3: a.cwd(); break;
                case 4: a.cdq(); break;
                case 5: a.cqo(); break;
                case 6: a.lahf(); break;
                case 7: a.sahf(); break;
                case 8:
                    if ((pattern & 1) != 0)
                    {
                        a.clc();
                    }

                    if ((pattern & 2) != 0)
                    {
                        a.stc();
                    }

                    a.cmc();
                    a.setb(dl);
                    break;
                case 9:
                    if ((pattern & 1) != 0)
                    {
                        a.std();
                    }

                    a.lodsb();
                    a.cld();
                    a.lodsb();
                    break;
                case 10: a.xlatb(); break;
                case 11:
                    a.enter((ushort)(pattern * 24), (byte)(pattern & 3));
                    a.mov(__qword_ptr[rsp], rax);
                    a.leave();
                    break;
                case 12:
                    {
                        var f = a.CreateLabel();
                        var end = a.CreateLabel();
                        a.push(rdx);
                        a.call(f);
                        a.jmp(end);
                        a.Label(ref f);
                        a.mov(r8, __qword_ptr[rsp]);
                        a.ret(8);
                        a.Label(ref end);
                        break;
                    }

                case 13:
                    a.AddInstruction(Instruction.CreateStosb(32, RepPrefixKind.Repe));
                    break;
                case 14:
                    a.AddInstruction(Instruction.CreateLodsd(32, Register.None, RepPrefixKind.None));
                    break;
                default:
                    a.AddInstruction(Instruction.CreateMovsb(32, Register.None, RepPrefixKind.Repe));
                    break;
            }
        };
        if (which == 9)
        {
            c.Gpr[6] = DiffLayout.Data + 0x1800;
        }

        return c;
    }
}
