// Data movement and exchange: XCHG, XADD, CMPXCHG (equal and unequal), CMPXCHG8B, BSWAP, MOVSX/MOVZX/MOVSXD, LEA with
// every addressing form (base, index*scale, disp8/disp32, RIP-relative, 32-bit address size), PUSH/POP (register,
// memory, immediate), PUSHF/POPF, CMPXCHG16B (aligned, equal and unequal; misaligned: #GP). BSWAP of a 16-bit
// register is undefined (SDM Vol. 2A BSWAP) and left out. POPF at CPL 3 with IOPL 0 leaves IF and IOPL alone.
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Ringvisor.Emulator.Tests.Differential.DiffOperands;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class DataMoveCases
{
    public static IEnumerable<DiffCase> Random(int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var c = One(rng);
            c.Origin = $"DataMoveCases.Random({seed}) #{i}";
            yield return c;
        }
    }

    private static DiffCase One(Random rng)
    {
        var c = DiffCase.Randomized(rng);
        int bits = DiffValues.Sizes[rng.Next(4)];
        bool high = bits == 8 && rng.Next(2) == 0;
        int d = Pick(rng, high, 0);
        int s = Pick(rng, high, 0);
        int b = Pick(rng, true, 4, 0);
        bool memory = rng.Next(3) == 0;
        MemoryOperand Mem() => DataOperand(rng, c, b, bits / 8);
        switch (rng.Next(11))
        {
            case 0:
                return c.With(memory
                    ? Instruction.Create(Code($"Xchg_rm{bits}_r{bits}"), Mem(), Reg(s, bits, high))
                    : Instruction.Create(Code($"Xchg_rm{bits}_r{bits}"), Reg(d, bits, high), Reg(s, bits, high)), $"xchg{bits}");
            case 1:
                return c.With(memory
                    ? Instruction.Create(Code($"Xadd_rm{bits}_r{bits}"), Mem(), Reg(s, bits, high))
                    : Instruction.Create(Code($"Xadd_rm{bits}_r{bits}"), Reg(d, bits, high), Reg(s, bits, high)), $"xadd{bits}");
            case 2:
                {
                    // CMPXCHG compares with AL/AX/EAX/RAX: make them equal half of the time.
                    Instruction ins;
                    if (memory)
                    {
                        var m = Mem();
                        ulong ea = c.Gpr[b] + (ulong)m.Displacement;
                        if (rng.Next(2) == 0)
                        {
                            ulong rax = c.Gpr[0];
                            int off = (int)(ea - DiffLayout.Data);
                            c.PrepareData = data =>
                            {
                                for (int i = 0; i < bits / 8; i++)
                                {
                                    data[off + i] = (byte)(rax >> (8 * i));
                                }
                            };
                        }

                        ins = Instruction.Create(Code($"Cmpxchg_rm{bits}_r{bits}"), m, Reg(s, bits, high));
                    }
                    else
                    {
                        if (rng.Next(2) == 0)
                        {
                            c.Gpr[0] = c.Gpr[Home(d, bits, high)] >> (high && d >= 4 ? 8 : 0);
                        }

                        ins = Instruction.Create(Code($"Cmpxchg_rm{bits}_r{bits}"), Reg(d, bits, high), Reg(s, bits, high));
                    }

                    return c.With(ins, $"cmpxchg{bits}");
                }

            case 3:
                {
                    var m = DataOperand(rng, c, Pick(rng, true, 4, 0, 1, 2, 3), 8);
                    ulong ea = c.Gpr[m.Base - Register.RAX] + (ulong)m.Displacement;
                    if (rng.Next(2) == 0)
                    {
                        ulong edxeax = ((c.Gpr[2] & 0xFFFF_FFFF) << 32) | (c.Gpr[0] & 0xFFFF_FFFF);
                        int off = (int)(ea - DiffLayout.Data);
                        c.PrepareData = data => BitConverter.TryWriteBytes(data.Slice(off, 8), edxeax);
                    }

                    return c.With(Instruction.Create(Iced.Intel.Code.Cmpxchg8b_m64, m), "cmpxchg8b");
                }

            case 10:
                {
                    var m = DataOperand(rng, c, Pick(rng, true, 4, 0, 1, 2, 3), 16);
                    int bi = m.Base - Register.RAX;
                    ulong ea = c.Gpr[bi] + (ulong)m.Displacement;
                    if (rng.Next(4) != 0)
                    {
                        // Mostly 16-byte aligned; otherwise #GP(0) on both sides.
                        c.Gpr[bi] -= ea & 0xF;
                        ea &= ~0xFUL;
                    }

                    if (rng.Next(2) == 0)
                    {
                        // Memory equal to RDX:RAX (or to RAX only: the high halves decide).
                        ulong rax = c.Gpr[0], rdx = rng.Next(3) == 0 ? ~c.Gpr[2] : c.Gpr[2];
                        int off = (int)(ea - DiffLayout.Data);
                        c.PrepareData = data =>
                        {
                            BitConverter.TryWriteBytes(data.Slice(off, 8), rax);
                            BitConverter.TryWriteBytes(data.Slice(off + 8, 8), rdx);
                        };
                    }

                    var ins = Instruction.Create(Iced.Intel.Code.Cmpxchg16b_m128, m);
                    ins.HasLockPrefix = rng.Next(2) == 0;
                    return c.With(ins, "cmpxchg16b");
                }

            case 4:
                {
                    int size = rng.Next(2) == 0 ? 32 : 64;
                    return c.With(Instruction.Create(Code($"Bswap_r{size}"), DiffValues.Gpr(Pick(rng, false), size)), $"bswap{size}");
                }

            case 5:
                {
                    // MOVSX/MOVZX r16/32/64 <- r/m8, r32/64 <- r/m16; MOVSXD r64 <- r/m32.
                    string[] forms = ["Movsx_r16_rm8", "Movsx_r32_rm8", "Movsx_r64_rm8", "Movsx_r32_rm16", "Movsx_r64_rm16",
                        "Movzx_r16_rm8", "Movzx_r32_rm8", "Movzx_r64_rm8", "Movzx_r32_rm16", "Movzx_r64_rm16", "Movsxd_r64_rm32"];
                    string f = forms[rng.Next(forms.Length)];
                    int dst = int.Parse(f.Split('_')[1][1..]);
                    int src = int.Parse(f.Split('_')[2][2..]);
                    bool hi = src == 8 && dst != 64 && rng.Next(2) == 0;
                    int sr = Pick(rng, hi);
                    var ins = memory
                        ? Instruction.Create(Code(f), DiffValues.Gpr(Pick(rng, false), dst), DataOperand(rng, c, b, src / 8))
                        : Instruction.Create(Code(f), DiffValues.Gpr(hi ? Pick(rng, false, 8, 9, 10, 11, 12, 13, 14, 15) : Pick(rng, false), dst), Reg(sr, src, hi));
                    return c.With(ins, f);
                }

            case 6:
                return Lea(rng, c);
            case 7:
                {
                    int which = rng.Next(5);
                    int r = Pick(rng, false);
                    c.Name = which switch { 0 => "push/pop reg", 1 => "push imm", 2 => "push mem", 3 => "pop mem", _ => "push16/pop16" };
                    var m = DataOperand(rng, c, Pick(rng, true, 4, r), 8);
                    int imm = (int)Imm(rng, 32);
                    int r2 = Pick(rng, false);
                    c.Body = a =>
                    {
                        switch (which)
                        {
                            case 0:
                                a.AddInstruction(Instruction.Create(Iced.Intel.Code.Push_r64, DiffValues.Gpr64(r)));
                                a.AddInstruction(Instruction.Create(Iced.Intel.Code.Pop_r64, DiffValues.Gpr64(r2)));
                                break;
                            case 1:
                                a.AddInstruction(Instruction.Create(Iced.Intel.Code.Pushq_imm32, imm));
                                a.AddInstruction(Instruction.Create(Iced.Intel.Code.Pop_r64, DiffValues.Gpr64(r2)));
                                break;
                            case 2:
                                a.AddInstruction(Instruction.Create(Iced.Intel.Code.Push_rm64, m));
                                a.AddInstruction(Instruction.Create(Iced.Intel.Code.Pop_r64, DiffValues.Gpr64(r2)));
                                break;
                            case 3:
                                a.AddInstruction(Instruction.Create(Iced.Intel.Code.Push_r64, DiffValues.Gpr64(r)));
                                a.AddInstruction(Instruction.Create(Iced.Intel.Code.Pop_rm64, m));
                                break;
                            default:
                                a.AddInstruction(Instruction.Create(Iced.Intel.Code.Push_r16, DiffValues.Gpr(r, 16)));
                                a.AddInstruction(Instruction.Create(Iced.Intel.Code.Pop_r16, DiffValues.Gpr(r2, 16)));
                                break;
                        }
                    };
                    return c;
                }

            case 8:
                {
                    // POPF of a random value, then PUSHF to read what the CPU kept (TF kept clear: no single-step trap
                    // here). IF is cleared in the pushed image before it is compared: on this host (KVM without VT-x,
                    // guest CPL 3 runs natively) PUSHF at CPL 3 reads the host's IF, 1, whatever the guest's is.
                    ulong value = ((ulong)rng.NextInt64() & ~0x100UL) | ((ulong)rng.Next(2) << 18);
                    int r = Pick(rng, false);
                    c.Gpr[r] = value;
                    int r2 = Pick(rng, false);
                    c.Name = "popf/pushf";
                    c.Body = a =>
                    {
                        a.AddInstruction(Instruction.Create(Iced.Intel.Code.Push_r64, DiffValues.Gpr64(r)));
                        a.popfq();
                        a.pushfq();
                        a.and(__qword_ptr[rsp], ~0x200);
                        a.AddInstruction(Instruction.Create(Iced.Intel.Code.Pop_r64, DiffValues.Gpr64(r2)));
                    };
                    return c;
                }

            default:
                {
                    // MOV with every size to and from memory and registers (8-bit high included), MOV r64, imm64.
                    var ins = rng.Next(3) switch
                    {
                        0 => Instruction.Create(Code($"Mov_rm{bits}_r{bits}"), Mem(), Reg(s, bits, high)),
                        1 => Instruction.Create(Code($"Mov_r{bits}_rm{bits}"), Reg(d, bits, high), Mem()),
                        _ => Instruction.Create(Iced.Intel.Code.Mov_r64_imm64, DiffValues.Gpr64(Pick(rng, false)), DiffValues.Next(rng)),
                    };
                    return c.With(ins, $"mov{bits}");
                }
        }
    }

    private static DiffCase Lea(Random rng, DiffCase c)
    {
        int bits = DiffValues.Sizes[1 + rng.Next(3)];
        int d = Pick(rng, false);
        int form = rng.Next(6);
        int baseIndex = rng.Next(16);
        int index = Pick(rng, false);
        int scale = 1 << rng.Next(4);
        long disp = rng.Next(3) switch { 0 => 0, 1 => rng.Next(-128, 128), _ => (int)DiffValues.Next(rng) };
        MemoryOperand m = form switch
        {
            0 => new MemoryOperand(DiffValues.Gpr64(baseIndex), disp),
            1 => new MemoryOperand(DiffValues.Gpr64(baseIndex), DiffValues.Gpr64(index), scale, disp, disp == 0 ? 0 : 8),
            2 => new MemoryOperand(Register.None, DiffValues.Gpr64(index), scale, disp, 8),
            3 => new MemoryOperand(Register.EAX + baseIndex, Register.EAX + index, scale, (uint)disp, disp == 0 ? 0 : 4),
            4 => new MemoryOperand(Register.RIP, (long)DiffLayout.CodeBase + (disp % 0x4000_0000)), // within rel32 reach
            _ => new MemoryOperand(DiffValues.Gpr64(baseIndex), DiffValues.Gpr64(index), scale, (sbyte)disp, 1),
        };
        return c.With(Instruction.Create(Code($"Lea_r{bits}_m"), DiffValues.Gpr(d, bits), m), $"lea{bits} form {form}");
    }
}
