// String instructions (SDM Vol. 2: MOVS, STOS, LODS, CMPS, SCAS, INS, OUTS with REP/REPE/REPNE). A REP instruction
// runs at most RepChunk iterations per step and then re-executes (RIP stays) so interrupts and kicks are serviced
// between iterations, as on hardware. Faults mid-way leave RCX/RSI/RDI describing the completed iterations.
// REP MOVS/STOS with DF=0 copy or fill whole page-bounded chunks through host pointers.
using System.Runtime.CompilerServices;
using Iced.Intel;
using Ringvisor.Emulator.Memory;

namespace Ringvisor.Emulator.Instructions;

public sealed unsafe partial class Cpu
{
    private const long RepChunk = 16384;

    private static int StringAddrSize(OpKind k) => k switch
    {
        OpKind.MemorySegSI or OpKind.MemorySegDI or OpKind.MemoryESDI => 2,
        OpKind.MemorySegESI or OpKind.MemorySegEDI or OpKind.MemoryESEDI => 4,
        _ => 8,
    };

    private int StringAddressSize(in Instruction ins)
    {
        for (int i = 0; i < ins.OpCount; i++)
        {
            var k = ins.GetOpKind(i);
            if (k is >= OpKind.MemorySegSI and <= OpKind.MemoryESRDI)
            {
                return StringAddrSize(k);
            }
        }

        return _bitness == 64 ? 8 : _bitness / 8;
    }

    private void AdvanceIndex(int reg, int addrSize, long delta)
    {
        ulong m = SizeMask(addrSize);
        ulong v = (Gpr[reg] + (ulong)delta) & m;
        Gpr[reg] = addrSize == 4 ? v : (Gpr[reg] & ~m) | v;
    }

    private void SetCounter(int addrSize, ulong c)
    {
        ulong m = SizeMask(addrSize);
        Gpr[1] = addrSize == 4 ? c & m : (Gpr[1] & ~m) | (c & m);
    }

    private void ExecString(in Instruction ins, Mnemonic m)
    {
        int size = ins.MemorySize.GetSize();
        if (size == 0)
        {
            size = m switch
            {
                Mnemonic.Insb or Mnemonic.Outsb => 1,
                Mnemonic.Insw or Mnemonic.Outsw => 2,
                _ => 4,
            };
        }

        int asz = StringAddressSize(ins);
        ulong amask = SizeMask(asz);
        bool rep = ins.HasRepPrefix || ins.HasRepePrefix || ins.HasRepnePrefix;
        long step = DF ? -size : size;
        int srcSeg = ins.MemorySegment - Register.ES;
        if (srcSeg < 0 || srcSeg > 5)
        {
            srcSeg = SegDs;
        }

        bool isIo = m is Mnemonic.Insb or Mnemonic.Insw or Mnemonic.Insd or Mnemonic.Outsb or Mnemonic.Outsw or Mnemonic.Outsd;
        if (isIo && !IoAllowed((ushort)Gpr[2], size))
        {
            _ = Gp(0);
            return;
        }

        ulong count = rep ? Gpr[1] & amask : 1;
        if (count == 0)
        {
            return;
        }

        long budget = RepChunk;
        bool isCmp = m is Mnemonic.Cmpsb or Mnemonic.Cmpsw or Mnemonic.Cmpsd or Mnemonic.Cmpsq or Mnemonic.Scasb or Mnemonic.Scasw or Mnemonic.Scasd or Mnemonic.Scasq;
        bool repe = ins.HasRepePrefix;
        while (count > 0 && budget > 0)
        {
            if (rep && !DF && !isCmp && !isIo && count > 1 && TryBulk(m, size, asz, srcSeg, ref count, ref budget))
            {
                continue;
            }

            ulong di = Gpr[7] & amask;
            ulong si = Gpr[6] & amask;
            switch (m)
            {
                case Mnemonic.Movsb:
                case Mnemonic.Movsw:
                case Mnemonic.Movsd:
                case Mnemonic.Movsq:
                    {
                        if (!ReadMem(Linear(srcSeg, si), size, out ulong v) || !WriteMem(Linear(SegEs, di), size, v))
                        {
                            return;
                        }

                        AdvanceIndex(6, asz, step);
                        AdvanceIndex(7, asz, step);
                        break;
                    }

                case Mnemonic.Stosb:
                case Mnemonic.Stosw:
                case Mnemonic.Stosd:
                case Mnemonic.Stosq:
                    if (!WriteMem(Linear(SegEs, di), size, Gpr[0]))
                    {
                        return;
                    }

                    AdvanceIndex(7, asz, step);
                    break;
                case Mnemonic.Lodsb:
                case Mnemonic.Lodsw:
                case Mnemonic.Lodsd:
                case Mnemonic.Lodsq:
                    {
                        if (!ReadMem(Linear(srcSeg, si), size, out ulong v))
                        {
                            return;
                        }

                        WriteReg(size switch { 1 => Register.AL, 2 => Register.AX, 4 => Register.EAX, _ => Register.RAX }, v);
                        AdvanceIndex(6, asz, step);
                        break;
                    }

                case Mnemonic.Cmpsb:
                case Mnemonic.Cmpsw:
                case Mnemonic.Cmpsd:
                case Mnemonic.Cmpsq:
                    {
                        if (!ReadMem(Linear(srcSeg, si), size, out ulong a) || !ReadMem(Linear(SegEs, di), size, out ulong b))
                        {
                            return;
                        }

                        SetLazy(FlagOp.Sub, a, b, (a - b) & SizeMask(size), size);
                        AdvanceIndex(6, asz, step);
                        AdvanceIndex(7, asz, step);
                        break;
                    }

                case Mnemonic.Scasb:
                case Mnemonic.Scasw:
                case Mnemonic.Scasd:
                case Mnemonic.Scasq:
                    {
                        if (!ReadMem(Linear(SegEs, di), size, out ulong b))
                        {
                            return;
                        }

                        ulong a = Gpr[0] & SizeMask(size);
                        SetLazy(FlagOp.Sub, a, b, (a - b) & SizeMask(size), size);
                        AdvanceIndex(7, asz, step);
                        break;
                    }

                case Mnemonic.Insb:
                case Mnemonic.Insw:
                case Mnemonic.Insd:
                    {
                        // Probe the destination first so a fault does not lose the port read.
                        ulong la = Linear(SegEs, di);
                        if (!_mmu.TryTranslate(la, MemoryAccessKind.Write, out _))
                        {
                            _ = MmuFault();
                            return;
                        }

                        Span<byte> buf = stackalloc byte[4];
                        _stats.Pio();
                        _host.Pio.Read((ushort)Gpr[2], buf[..size]);
                        if (!WriteMem(la, size, System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(buf)))
                        {
                            return;
                        }

                        AdvanceIndex(7, asz, step);
                        break;
                    }

                default:
                    {
                        // OUTS
                        if (!ReadMem(Linear(srcSeg, si), size, out ulong v))
                        {
                            return;
                        }

                        Span<byte> buf = stackalloc byte[4];
                        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(buf, (uint)v);
                        _stats.Pio();
                        _host.Pio.Write((ushort)Gpr[2], buf[..size]);
                        AdvanceIndex(6, asz, step);
                        break;
                    }
            }

            count--;
            budget--;
            if (rep)
            {
                SetCounter(asz, count);
                if (isCmp && count > 0 && GetZf() != repe)
                {
                    return;
                }

                if (isCmp && GetZf() != repe)
                {
                    return;
                }
            }
        }

        if (rep && count > 0)
        {
            // Not finished: run this instruction again (after pending events are looked at).
            _nextRip = Rip;
        }
    }

    /// <summary>Copies or fills a page-bounded chunk of a forward REP MOVS/STOS through host pointers.</summary>
    private bool TryBulk(Mnemonic m, int size, int asz, int srcSeg, ref ulong count, ref long budget)
    {
        ulong amask = SizeMask(asz);
        ulong di = Gpr[7] & amask;
        ulong dla = Linear(SegEs, di);
        bool isMovs = m is Mnemonic.Movsb or Mnemonic.Movsw or Mnemonic.Movsd or Mnemonic.Movsq;
        if (!isMovs && m is not (Mnemonic.Stosb or Mnemonic.Stosw or Mnemonic.Stosd or Mnemonic.Stosq))
        {
            return false;
        }

        ulong n = Math.Min(count, (ulong)budget);
        n = Math.Min(n, (0x1000 - (dla & 0xFFF)) / (ulong)size);
        ulong si = Gpr[6] & amask;
        ulong sla = Linear(srcSeg, si);
        if (isMovs)
        {
            n = Math.Min(n, (0x1000 - (sla & 0xFFF)) / (ulong)size);
        }

        // Index registers must not wrap inside the chunk.
        if (n < 2 || di + n * (ulong)size - 1 > amask || (isMovs && si + n * (ulong)size - 1 > amask))
        {
            return false;
        }

        // Page-bounded spans straight over guest RAM; anything else (a fault, MMIO, a store into a page holding
        // decoded code) goes element by element, which raises the fault or reports the code-page write. The source
        // is translated first, as the element-wise order reads before it writes.
        int bytes = (int)(n * (ulong)size);
        Span<byte> src = default;
        if (isMovs && _mmu.TryGetHostSpan(sla, bytes, MemoryAccessKind.Read, out src) != HostSpanResult.Ok)
        {
            return false;
        }

        if (_mmu.TryGetHostSpan(dla, bytes, MemoryAccessKind.Write, out var dst) != HostSpanResult.Ok)
        {
            return false;
        }

        if (isMovs)
        {
            fixed (byte* dp = dst)
            fixed (byte* sp = src)
            {
                // SAFETY: both spans lie inside RAM pages (TryGetHostSpan bounded them by the page ends).
                if (dp > sp && dp < sp + bytes)
                {
                    // Overlapping forward copy: element by element, each read whole before it is written, as the
                    // architectural sequential semantics require (SDM Vol. 1 §7.3.9.3: fast strings are not used
                    // when the operands overlap closely). A byte-wise copy differs when the distance is below the
                    // element size.
                    for (int i = 0; i < bytes; i += size)
                    {
                        switch (size)
                        {
                            case 1: dp[i] = sp[i]; break;
                            case 2: Unsafe.WriteUnaligned(dp + i, Unsafe.ReadUnaligned<ushort>(sp + i)); break;
                            case 4: Unsafe.WriteUnaligned(dp + i, Unsafe.ReadUnaligned<uint>(sp + i)); break;
                            default: Unsafe.WriteUnaligned(dp + i, Unsafe.ReadUnaligned<ulong>(sp + i)); break;
                        }
                    }
                }
                else
                {
                    Buffer.MemoryCopy(sp, dp, bytes, bytes);
                }
            }

            AdvanceIndex(6, asz, bytes);
        }
        else
        {
            ulong v = Gpr[0];
            switch (size)
            {
                case 1:
                    dst.Fill((byte)v);
                    break;
                case 2:
                    System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(dst).Fill((ushort)v);
                    break;
                case 4:
                    System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(dst).Fill((uint)v);
                    break;
                default:
                    System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(dst).Fill(v);
                    break;
            }
        }

        AdvanceIndex(7, asz, bytes);
        count -= n;
        budget -= (long)n;
        SetCounter(asz, count);
        return true;
    }

    // ---- port I/O ----------------------------------------------------------------------------------------------

    /// <summary>IOPL and the TSS I/O permission bitmap (SDM Vol. 1 §19.5).</summary>
    private bool IoAllowed(ushort port, int size)
    {
        if (!_protected || (_cpl <= Iopl && (_flags & FlagVm) == 0))
        {
            return true;
        }

        if ((Tr.Type & 0x9) != 0x9 || Tr.Limit < 0x67)
        {
            return false;
        }

        if (!ReadSys(Tr.Base + 0x66, 2, out ulong mapBase))
        {
            _faultPending = false;
            return false;
        }

        ulong byteOff = mapBase + (ulong)(port >> 3);
        if (byteOff + 1 > Tr.Limit)
        {
            return false;
        }

        if (!ReadSys(Tr.Base + byteOff, 2, out ulong bits))
        {
            _faultPending = false;
            return false;
        }

        ulong mask = ((1UL << size) - 1) << (port & 7);
        return (bits & mask) == 0;
    }

    private void ExecIn(in Instruction ins)
    {
        int size = s_regSize[(int)ins.Op0Register];
        ushort port = ins.GetOpKind(1) == OpKind.Register ? (ushort)Gpr[2] : (ushort)ins.Immediate8;
        if (!IoAllowed(port, size))
        {
            _ = Gp(0);
            return;
        }

        Span<byte> buf = stackalloc byte[4];
        _stats.Pio();
        _host.Pio.Read(port, buf[..size]);
        WriteReg(ins.Op0Register, System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(buf));
    }

    private void ExecOut(in Instruction ins)
    {
        int size = s_regSize[(int)ins.Op1Register];
        ushort port = ins.GetOpKind(0) == OpKind.Register ? (ushort)Gpr[2] : (ushort)ins.Immediate8;
        if (!IoAllowed(port, size))
        {
            _ = Gp(0);
            return;
        }

        Span<byte> buf = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(buf, (uint)ReadReg(ins.Op1Register));
        _stats.Pio();
        _host.Pio.Write(port, buf[..size]);
    }
}
