// Segment registers and descriptors (SDM Vol. 3A §3.4-3.5, §5.4-5.8): descriptor-table reads, MOV/POP to segment
// registers with the protection checks (#GP/#NP/#SS with the selector as error code), LDS/LES/LFS/LGS/LSS,
// far JMP/CALL/RET through code segments, LAR/LSL/VERR/VERW and ARPL. Far JMP/CALL to a TSS or task gate goes to
// CpuTaskSwitch.cs; call gates are not supported (#GP with the selector).
using Iced.Intel;
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Exceptions;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    /// <summary>Reads the 8-byte descriptor of a selector from the GDT or LDT; #GP(selector) past the limit.</summary>
    internal bool ReadDescriptor(ushort sel, out ulong desc, out ulong descAddr)
    {
        desc = 0;
        descAddr = 0;
        bool ldt = (sel & 4) != 0;
        ulong tableBase = ldt ? Ldtr.Base : Gdtr.Base;
        ulong limit = ldt ? Ldtr.Limit : Gdtr.Limit;
        ulong index = (ulong)(sel & ~7);
        if ((ldt && Ldtr.Unusable) || index + 7 > limit)
        {
            return Gp((uint)(sel & ~3));
        }

        descAddr = tableBase + index;
        return ReadSys(descAddr, 8, out desc);
    }

    /// <summary>Builds a descriptor cache from the 8-byte descriptor (and the upper half for 64-bit system descriptors).</summary>
    internal static SegmentRegister DescriptorToCache(ushort sel, ulong d, ulong high = 0)
    {
        uint limit = (uint)((d & 0xFFFF) | ((d >> 32) & 0xF_0000));
        bool g = ((d >> 55) & 1) != 0;
        if (g)
        {
            limit = (limit << 12) | 0xFFF;
        }

        bool s = ((d >> 44) & 1) != 0;
        ulong b = ((d >> 16) & 0xFF_FFFF) | ((d >> 32) & 0xFF00_0000);
        if (!s)
        {
            b |= high << 32;
        }

        return new SegmentRegister
        {
            Selector = sel,
            Base = b,
            Limit = limit,
            Type = (byte)((d >> 40) & 0xF),
            CodeOrData = s,
            Dpl = (byte)((d >> 45) & 3),
            Present = ((d >> 47) & 1) != 0,
            Available = ((d >> 52) & 1) != 0,
            Long = ((d >> 53) & 1) != 0,
            DefaultBig = ((d >> 54) & 1) != 0,
            Granularity = g,
        };
    }

    private static bool IsCode(ulong d) => ((d >> 43) & 1) != 0 && ((d >> 44) & 1) != 0;

    private static bool IsCodeOrDataDesc(ulong d) => ((d >> 44) & 1) != 0;

    private static int DescDpl(ulong d) => (int)((d >> 45) & 3);

    private static bool DescPresent(ulong d) => ((d >> 47) & 1) != 0;

    /// <summary>Sets the descriptor's accessed bit in memory, as the processor does on a segment load.</summary>
    private void MarkAccessed(ulong descAddr, ulong d)
    {
        if (((d >> 40) & 1) == 0)
        {
            _ = WriteSys(descAddr + 5, 1, ((d >> 40) & 0xFF) | 1);
        }
    }

    /// <summary>Loads a data/stack segment register (MOV, POP, LxS), applying the mode's rules.</summary>
    internal bool LoadSegment(int seg, ushort sel)
    {
        if (!_protected || (_flags & FlagVm) != 0)
        {
            ref var s = ref Seg[seg];
            s.Selector = sel;
            s.Base = (ulong)sel << 4;
            if ((_flags & FlagVm) != 0)
            {
                s = SegmentRegister.RealMode(sel, seg == SegCs);
                s.Dpl = 3;
            }

            return true;
        }

        int rpl = sel & 3;
        if ((sel & ~3) == 0)
        {
            if (seg == SegSs && !(_bitness == 64 && _cpl < 3 && rpl == _cpl))
            {
                return Gp(0);
            }

            Seg[seg] = new SegmentRegister { Selector = sel, Unusable = true, Dpl = (byte)rpl };
            return true;
        }

        if (!ReadDescriptor(sel, out ulong d, out ulong addr))
        {
            return false;
        }

        uint err = (uint)(sel & ~3);
        int dpl = DescDpl(d);
        if (seg == SegSs)
        {
            bool writableData = IsCodeOrDataDesc(d) && !IsCode(d) && ((d >> 41) & 1) != 0;
            if (rpl != _cpl || !writableData || dpl != _cpl)
            {
                return Gp(err);
            }

            if (!DescPresent(d))
            {
                return Fault(ExceptionVector.StackFault, err);
            }
        }
        else
        {
            bool readable = IsCodeOrDataDesc(d) && (!IsCode(d) || ((d >> 41) & 1) != 0);
            bool conformingCode = IsCode(d) && ((d >> 42) & 1) != 0;
            if (!readable || (!conformingCode && (rpl > dpl || _cpl > dpl)))
            {
                return Gp(err);
            }

            if (!DescPresent(d))
            {
                return Fault(ExceptionVector.SegmentNotPresent, err);
            }
        }

        MarkAccessed(addr, d);
        Seg[seg] = DescriptorToCache(sel, d | (1UL << 40));
        return true;
    }

    private void ExecMovToSeg(in Instruction ins)
    {
        int seg = ins.Op0Register - Register.ES;
        if (seg == SegCs)
        {
            _ = Ud();
            return;
        }

        if (!ReadOp(ins, 1, 2, out ulong v) || !LoadSegment(seg, (ushort)v))
        {
            return;
        }

        if (seg == SegSs)
        {
            SetMovSsShadow();
        }
    }

    private void ExecPopSeg(in Instruction ins)
    {
        int seg = ins.Op0Register - Register.ES;
        int size = StackOpSize(ins);
        if (!PeekStack(0, size, out ulong v))
        {
            return;
        }

        ulong oldSp = Gpr[4];
        SetSp(StackWrap(Gpr[4] + (ulong)size));
        if (!LoadSegment(seg, (ushort)v))
        {
            Gpr[4] = oldSp;
            return;
        }

        if (seg == SegSs)
        {
            SetMovSsShadow();
        }
    }

    /// <summary>LDS/LES/LFS/LGS/LSS: load a far pointer (offset then selector) from memory.</summary>
    private void ExecLoadFarPointer(in Instruction ins, int seg)
    {
        int size = s_regSize[(int)ins.Op0Register];
        ulong la = MemoryLinear(ins);
        if (!ReadMem(la, size, out ulong off) || !ReadMem(AddressWrap(la + (ulong)size), 2, out ulong sel))
        {
            return;
        }

        if (!LoadSegment(seg, (ushort)sel))
        {
            return;
        }

        WriteReg(ins.Op0Register, off);
        if (seg == SegSs)
        {
            SetMovSsShadow();
        }
    }

    /// <summary>Loads CS for a far transfer to a code segment at the same privilege (SDM Vol. 3A §5.8.1).</summary>
    private bool LoadCodeSegmentFar(ushort sel, out SegmentRegister cs, out ulong descAddr, out ulong desc)
    {
        cs = default;
        descAddr = 0;
        desc = 0;
        if ((sel & ~3) == 0)
        {
            return Gp(0);
        }

        if (!ReadDescriptor(sel, out desc, out descAddr))
        {
            return false;
        }

        uint err = (uint)(sel & ~3);
        if (!IsCode(desc))
        {
            // Call gates are not supported (task gates and TSS descriptors are taken before this, outside long mode).
            return Gp(err);
        }

        bool conforming = ((desc >> 42) & 1) != 0;
        int dpl = DescDpl(desc);
        if (conforming ? dpl > _cpl : ((sel & 3) > _cpl || dpl != _cpl))
        {
            return Gp(err);
        }

        if (!DescPresent(desc))
        {
            return Fault(ExceptionVector.SegmentNotPresent, err);
        }

        cs = DescriptorToCache((ushort)((sel & ~3) | _cpl), desc | (1UL << 40));
        return true;
    }

    /// <summary>Far JMP or CALL to selector:offset (operand size <paramref name="opSize"/> for CALL's pushes).</summary>
    private void FarTransfer(ushort sel, ulong offset, bool call, int opSize)
    {
        if (!_protected || (_flags & FlagVm) != 0)
        {
            if (call && (!Push(Seg[SegCs].Selector, opSize) || !Push(_nextRip, opSize)))
            {
                return;
            }

            Seg[SegCs].Selector = sel;
            Seg[SegCs].Base = (ulong)sel << 4;
            _nextRip = opSize == 2 ? (ushort)offset : (uint)offset;
            UpdateMode();
            return;
        }

        if ((sel & ~3) != 0 && !_longMode)
        {
            // A system descriptor (TSS, task gate) switches tasks; code segments take the path below.
            if (!ReadDescriptor(sel, out ulong sd, out _))
            {
                return;
            }

            if (!IsCodeOrDataDesc(sd))
            {
                FarTransferSystem(sel, sd, call);
                return;
            }
        }

        if (!LoadCodeSegmentFar(sel, out var cs, out ulong addr, out ulong desc))
        {
            return;
        }

        if (cs.Long && _longMode ? !IsCanonical(offset) : offset > cs.Limit && !cs.Long)
        {
            _ = Gp(0);
            return;
        }

        if (call)
        {
            ulong sp = Gpr[4];
            if (!Push(Seg[SegCs].Selector, opSize) || !Push(_nextRip, opSize))
            {
                Gpr[4] = sp;
                return;
            }
        }

        MarkAccessed(addr, desc);
        Seg[SegCs] = cs;
        UpdateMode();
        _nextRip = opSize == 2 ? (ushort)offset : opSize == 4 ? (uint)offset : offset;
    }

    private void ExecFarJmpCall(in Instruction ins, bool call)
    {
        ushort sel;
        ulong off;
        int opSize;
        var k = ins.GetOpKind(0);
        if (k == OpKind.FarBranch16 || k == OpKind.FarBranch32)
        {
            sel = ins.FarBranchSelector;
            off = k == OpKind.FarBranch16 ? ins.FarBranch16 : ins.FarBranch32;
            opSize = k == OpKind.FarBranch16 ? 2 : 4;
        }
        else
        {
            // m16:16, m16:32 or m16:64.
            int total = ins.MemorySize.GetSize();
            opSize = total - 2;
            ulong la = MemoryLinear(ins);
            if (!ReadMem(la, opSize, out off) || !ReadMem(AddressWrap(la + (ulong)opSize), 2, out ulong s))
            {
                return;
            }

            sel = (ushort)s;
        }

        FarTransfer(sel, off, call, opSize);
    }

    /// <summary>RETF [imm16] (SDM RET: same-privilege and return-to-outer-privilege cases).</summary>
    private void ExecRetFar(in Instruction ins)
    {
        int opSize = OpSizeOfRetf(ins);
        ulong imm = ins.OpCount > 0 ? ins.Immediate16 : 0UL;
        if (!PeekStack(0, opSize, out ulong ip) || !PeekStack(opSize, opSize, out ulong selv))
        {
            return;
        }

        ushort sel = (ushort)selv;
        if (!_protected || (_flags & FlagVm) != 0)
        {
            SetSp(StackWrap(Gpr[4] + (ulong)(2 * opSize) + imm));
            Seg[SegCs].Selector = sel;
            Seg[SegCs].Base = (ulong)sel << 4;
            _nextRip = opSize == 2 ? (ushort)ip : (uint)ip;
            UpdateMode();
            return;
        }

        int rpl = sel & 3;
        if (rpl < _cpl || (sel & ~3) == 0)
        {
            _ = Gp((uint)(sel & ~3));
            return;
        }

        if (!ReadDescriptor(sel, out ulong d, out ulong addr))
        {
            return;
        }

        if (!IsCode(d) || (((d >> 42) & 1) != 0 ? DescDpl(d) > rpl : DescDpl(d) != rpl))
        {
            _ = Gp((uint)(sel & ~3));
            return;
        }

        if (!DescPresent(d))
        {
            _ = Fault(ExceptionVector.SegmentNotPresent, (uint)(sel & ~3));
            return;
        }

        var cs = DescriptorToCache(sel, d | (1UL << 40));
        if (rpl == _cpl)
        {
            SetSp(StackWrap(Gpr[4] + (ulong)(2 * opSize) + imm));
            MarkAccessed(addr, d);
            Seg[SegCs] = cs;
            UpdateMode();
            _nextRip = opSize == 2 ? (ushort)ip : opSize == 4 ? (uint)ip : ip;
            return;
        }

        // Return to an outer privilege level: pop SS:SP too and reload them at the new CPL.
        int spOff = 2 * opSize + (int)imm;
        if (!PeekStack(spOff, opSize, out ulong newSp) || !PeekStack(spOff + opSize, opSize, out ulong newSs))
        {
            return;
        }

        int oldCpl = _cpl;
        var oldCs = Seg[SegCs];
        _cpl = rpl;
        Seg[SegCs] = cs;
        UpdateMode();
        if (!LoadSegment(SegSs, (ushort)newSs))
        {
            _cpl = oldCpl;
            Seg[SegCs] = oldCs;
            UpdateMode();
            return;
        }

        MarkAccessed(addr, d);
        Gpr[4] = opSize == 8 || _bitness == 64 ? newSp + imm : StackWrap(newSp + imm);
        _nextRip = opSize == 2 ? (ushort)ip : opSize == 4 ? (uint)ip : ip;
        NullifyDataSegmentsForCpl();
    }

    private static int OpSizeOfRetf(in Instruction ins) => ins.Code switch
    {
        Code.Retfw or Code.Retfw_imm16 => 2,
        Code.Retfq or Code.Retfq_imm16 => 8,
        _ => 4,
    };

    /// <summary>After a return to an outer level, data segments the new CPL may not use become null (SDM RET/IRET).</summary>
    private void NullifyDataSegmentsForCpl()
    {
        foreach (int s in (ReadOnlySpan<int>)[SegEs, SegDs, SegFs, SegGs])
        {
            ref var r = ref Seg[s];
            bool conformingCode = r.CodeOrData && (r.Type & 0xC) == 0xC;
            if (!r.Unusable && r.CodeOrData && !conformingCode && r.Dpl < _cpl)
            {
                // Only the selector and validity change: the hidden base and limit stay (as on Intel parts and in
                // QEMU), so a 64-bit user program still addresses through the FS/GS base MSR values.
                r = new SegmentRegister { Selector = 0, Unusable = true, Base = r.Base, Limit = r.Limit };
            }
        }
    }

    private void ExecLarLsl(in Instruction ins, bool lsl)
    {
        if (!_protected || (_flags & FlagVm) != 0)
        {
            _ = Ud();
            return;
        }

        if (!ReadOp(ins, 1, 2, out ulong sv))
        {
            return;
        }

        ushort sel = (ushort)sv;
        bool ok = false;
        ulong d = 0;
        if ((sel & ~3) != 0)
        {
            bool ldt = (sel & 4) != 0;
            ulong limit = ldt ? Ldtr.Limit : Gdtr.Limit;
            if ((sel & ~7) + 7 <= (int)limit && !(ldt && Ldtr.Unusable))
            {
                if (!ReadSys((ldt ? Ldtr.Base : Gdtr.Base) + (ulong)(sel & ~7), 8, out d))
                {
                    return;
                }

                int type = (int)((d >> 40) & 0xF);
                bool s = IsCodeOrDataDesc(d);
                bool conforming = s && (type & 0xC) == 0xC;
                bool typeOk = s || (lsl ? type is 1 or 2 or 3 or 9 or 0xB : type is 1 or 2 or 3 or 4 or 5 or 9 or 0xB or 0xC);
                if (_longMode && !s)
                {
                    typeOk = lsl ? type is 2 or 9 or 0xB : type is 2 or 9 or 0xB or 0xC;
                }

                ok = typeOk && (conforming || (DescDpl(d) >= _cpl && DescDpl(d) >= (sel & 3)));
            }
        }

        PutFlag(FlagZf, ok);
        if (!ok)
        {
            return;
        }

        if (lsl)
        {
            WriteReg(ins.Op0Register, DescriptorToCache(sel, d).Limit);
        }
        else
        {
            WriteReg(ins.Op0Register, d >> 32 & 0x00F0_FF00);
        }
    }

    private void ExecVerrVerw(in Instruction ins, bool write)
    {
        if (!_protected || (_flags & FlagVm) != 0)
        {
            _ = Ud();
            return;
        }

        if (!ReadOp(ins, 0, 2, out ulong sv))
        {
            return;
        }

        ushort sel = (ushort)sv;
        bool ok = false;
        if ((sel & ~3) != 0)
        {
            bool ldt = (sel & 4) != 0;
            ulong limit = ldt ? Ldtr.Limit : Gdtr.Limit;
            if ((ulong)(sel & ~7) + 7 <= limit)
            {
                if (!ReadSys((ldt ? Ldtr.Base : Gdtr.Base) + (ulong)(sel & ~7), 8, out ulong d))
                {
                    return;
                }

                if (IsCodeOrDataDesc(d))
                {
                    bool code = IsCode(d);
                    bool rw = ((d >> 41) & 1) != 0;
                    bool conforming = code && ((d >> 42) & 1) != 0;
                    bool privOk = conforming || (DescDpl(d) >= _cpl && DescDpl(d) >= (sel & 3));
                    ok = privOk && (write ? !code && rw : !code || rw);
                }
            }
        }

        PutFlag(FlagZf, ok);
    }

    private void ExecArpl(in Instruction ins)
    {
        if (!ReadOp(ins, 0, 2, out ulong dst))
        {
            return;
        }

        ulong src = ReadReg(ins.Op1Register);
        if ((dst & 3) < (src & 3))
        {
            if (!WriteOp(ins, 0, 2, (dst & ~3UL) | (src & 3)))
            {
                return;
            }

            PutFlag(FlagZf, true);
        }
        else
        {
            PutFlag(FlagZf, false);
        }
    }
}
