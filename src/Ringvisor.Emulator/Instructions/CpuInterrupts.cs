// Exception and interrupt delivery (SDM Vol. 3A chapter 6): the real-mode IVT (§20.1.4), protected-mode gates with
// privilege changes through the TSS (§6.12), IA-32e 16-byte gates with IST and SS=null on a CPL change (§6.14), the
// double-fault rules (§6.15, Table 6-5) and triple fault (shutdown); IRET in every mode. Task gates and nested-task
// IRET go to CpuTaskSwitch.cs.
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Exceptions;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    // A software interrupt (INT n, INT3, INTO, INT1) raised by the current instruction; -1 when none.
    private int _softwareVector = -1;
    private ExceptionSource _softwareSource;
    private bool _shutdown;
    private bool _nmiBlocked;

    internal bool IsShutdown => _shutdown;

    /// <summary>Delivers an event through the IDT, escalating to #DF and triple fault as the SDM requires.</summary>
    internal void DeliverException(int vector, bool hasError, uint error, ExceptionSource source)
    {
        while (true)
        {
            if (_host.Options.CollectStats || _trace is not null)
            {
                _stats.Exception(vector);
                TraceException(vector, hasError, error, source);
            }

            _faultPending = false;
            if (TryDeliver(vector, hasError, error, source))
            {
                return;
            }

            int second = _faultVector;
            _faultPending = false;
            if (vector == ExceptionVector.DoubleFault)
            {
                TripleFault();
                return;
            }

            bool firstContributory = ExceptionVector.IsContributory(vector);
            bool secondContributory = ExceptionVector.IsContributory(second);
            bool escalate = (firstContributory && secondContributory) ||
                            (vector == ExceptionVector.PageFault && (second == ExceptionVector.PageFault || secondContributory));
            if (escalate)
            {
                vector = ExceptionVector.DoubleFault;
                hasError = true;
                error = 0;
            }
            else
            {
                vector = second;
                hasError = _faultHasError;
                error = _faultError;
            }

            source = ExceptionSource.Fault;
        }
    }

    private void TripleFault()
    {
        _shutdown = true;
        _stopBatch = true;
        TraceLine("triple fault: shutdown");
    }

    private static bool IsSoftware(ExceptionSource s) =>
        s is ExceptionSource.SoftwareInterrupt or ExceptionSource.SoftwareException or ExceptionSource.PrivilegedSoftware;

    private bool TryDeliver(int vector, bool hasError, uint error, ExceptionSource source)
    {
        ulong returnRip = IsSoftware(source) ? _nextRip : Rip;
        uint ext = source is ExceptionSource.External or ExceptionSource.Nmi ? 1u : 0u;
        if (!_protected)
        {
            return DeliverReal(vector, returnRip);
        }

        if ((_flags & FlagVm) != 0)
        {
            // Virtual-8086 mode is not supported.
            return Gp(0);
        }

        uint idtErr = (uint)(vector * 8 + 2) | ext;
        int entrySize = _longMode ? 16 : 8;
        if ((ulong)(vector * entrySize + entrySize - 1) > Idtr.Limit)
        {
            return Gp(idtErr);
        }

        ulong gateAddr = Idtr.Base + (ulong)(vector * entrySize);
        if (!ReadSys(gateAddr, 8, out ulong lo))
        {
            return false;
        }

        ulong hi = 0;
        if (_longMode && !ReadSys(gateAddr + 8, 8, out hi))
        {
            return false;
        }

        int type = (int)((lo >> 40) & 0xF);
        int gateDpl = (int)((lo >> 45) & 3);
        bool present = ((lo >> 47) & 1) != 0;
        bool validType = _longMode ? type is 0xE or 0xF : type is 0x6 or 0x7 or 0xE or 0xF;
        bool taskGate = !_longMode && type == TypeTaskGate;
        if (!validType && !taskGate)
        {
            return Gp(idtErr);
        }

        if ((source is ExceptionSource.SoftwareInterrupt or ExceptionSource.SoftwareException) && gateDpl < _cpl)
        {
            return Gp(idtErr);
        }

        if (!present)
        {
            return Fault(ExceptionVector.SegmentNotPresent, idtErr);
        }

        if (taskGate)
        {
            // RF is 1 in the EFLAGS image of a fault-class exception other than #DB, as for the gates below.
            ulong saved = GetRflags();
            if (source == ExceptionSource.Fault && vector != ExceptionVector.Debug)
            {
                saved |= FlagRf;
            }

            return DeliverThroughTaskGate(lo, returnRip, saved, ext, hasError, error);
        }

        ushort sel = (ushort)(lo >> 16);
        ulong offset = (lo & 0xFFFF) | ((lo >> 32) & 0xFFFF_0000);
        if (_longMode)
        {
            offset |= hi << 32;
        }

        int ist = _longMode ? (int)((lo >> 32) & 7) : 0;
        bool gate32 = type >= 0xE;
        bool trapGate = (type & 1) != 0;

        if ((sel & ~3) == 0)
        {
            return Gp(ext);
        }

        if (!ReadDescriptor(sel, out ulong cd, out ulong cdAddr))
        {
            return false;
        }

        uint selErr = (uint)(sel & ~3) | ext;
        int cdpl = DescDpl(cd);
        if (!IsCode(cd) || cdpl > _cpl || (_longMode && (((cd >> 53) & 1) == 0 || ((cd >> 54) & 1) != 0)))
        {
            return Gp(selErr);
        }

        if (!DescPresent(cd))
        {
            return Fault(ExceptionVector.SegmentNotPresent, selErr);
        }

        bool conforming = ((cd >> 42) & 1) != 0;
        int newCpl = conforming ? _cpl : cdpl;
        var newCs = DescriptorToCache((ushort)((sel & ~3) | newCpl), cd | (1UL << 40));
        ulong oldFlags = GetRflags();
        if (source == ExceptionSource.Fault && vector != ExceptionVector.Debug)
        {
            // The RF image saved for a fault-class exception (other than #DB) is 1, so that the IRET that restarts
            // the instruction does not retrigger an instruction breakpoint (SDM Vol. 3A §18.3.1.1; the real CPU
            // does so, as the KVM differential tests show).
            oldFlags |= FlagRf;
        }

        if (_longMode)
        {
            if (!IsCanonical(offset))
            {
                return Gp(ext);
            }

            ulong rsp = Gpr[4];
            if (ist != 0 || newCpl < _cpl)
            {
                ulong tssOff = ist != 0 ? 0x24 + (ulong)(8 * (ist - 1)) : 4 + (ulong)(8 * newCpl);
                if (tssOff + 7 > Tr.Limit)
                {
                    return Fault(ExceptionVector.InvalidTss, (uint)(Tr.Selector & ~3) | ext);
                }

                if (!ReadSys(Tr.Base + tssOff, 8, out rsp))
                {
                    return false;
                }
            }

            rsp &= ~0xFUL;
            bool user = newCpl == 3;

            // The frame is a stack reference: a non-canonical RSP makes the push #SS(0), not #GP(0).
            _stackSegment = true;
            ulong sp = rsp;
            Span<ulong> frame = [Seg[SegSs].Selector, Gpr[4], oldFlags, Seg[SegCs].Selector, returnRip, error];
            int n = hasError ? 6 : 5;
            for (int i = 0; i < n; i++)
            {
                sp -= 8;
                if (!WriteLinear(sp, 8, user, frame[i]))
                {
                    return false;
                }
            }

            MarkAccessed(cdAddr, cd);
            if (newCpl < _cpl)
            {
                // SS is loaded with a null selector whose RPL is the new CPL (SDM §6.14.4).
                Seg[SegSs] = new SegmentRegister { Selector = (ushort)newCpl, Unusable = true, Dpl = (byte)newCpl, DefaultBig = false };
            }

            Gpr[4] = sp;
            FinishDelivery(newCs, newCpl, offset, trapGate);
            return true;
        }

        // Protected mode (32-bit or 16-bit gates).
        int psize = gate32 ? 4 : 2;
        ulong newSp;
        SegmentRegister newSs;
        bool stackSwitch = newCpl < _cpl;
        if (stackSwitch)
        {
            bool tss32 = (Tr.Type & 8) != 0;
            ulong spOff = tss32 ? 4 + (ulong)(8 * newCpl) : 2 + (ulong)(4 * newCpl);
            int w = tss32 ? 4 : 2;
            if (spOff + (ulong)(2 * w) - 1 > Tr.Limit)
            {
                return Fault(ExceptionVector.InvalidTss, (uint)(Tr.Selector & ~3) | ext);
            }

            if (!ReadSys(Tr.Base + spOff, w, out newSp) || !ReadSys(Tr.Base + spOff + (ulong)w, 2, out ulong ssSel))
            {
                return false;
            }

            if ((ssSel & ~3UL) == 0 || (int)(ssSel & 3) != newCpl)
            {
                return Fault(ExceptionVector.InvalidTss, (uint)(ssSel & ~3UL) | ext);
            }

            if (!ReadDescriptor((ushort)ssSel, out ulong sd, out _))
            {
                return false;
            }

            if (!IsCodeOrDataDesc(sd) || IsCode(sd) || ((sd >> 41) & 1) == 0 || DescDpl(sd) != newCpl)
            {
                return Fault(ExceptionVector.InvalidTss, (uint)(ssSel & ~3UL) | ext);
            }

            if (!DescPresent(sd))
            {
                return Fault(ExceptionVector.StackFault, (uint)(ssSel & ~3UL) | ext);
            }

            newSs = DescriptorToCache((ushort)ssSel, sd | (1UL << 40));
        }
        else
        {
            newSs = Seg[SegSs];
            newSp = Gpr[4];
        }

        bool ssBig = newSs.DefaultBig;
        bool userAcc = newCpl == 3;
        _stackSegment = true;
        ulong spv = newSp;
        Span<ulong> items = [Seg[SegSs].Selector, Gpr[4], oldFlags, Seg[SegCs].Selector, returnRip, error];
        int start = stackSwitch ? 0 : 2;
        int end = hasError ? 6 : 5;
        for (int i = start; i < end; i++)
        {
            spv = ssBig ? (uint)(spv - (ulong)psize) : (ushort)(spv - (ulong)psize) | (spv & ~0xFFFFUL);
            ulong off = ssBig ? (uint)spv : (ushort)spv;
            if (!WriteLinear((uint)(newSs.Base + off), psize, userAcc, items[i]))
            {
                return false;
            }
        }

        MarkAccessed(cdAddr, cd);
        if (stackSwitch)
        {
            Seg[SegSs] = newSs;
        }

        if (ssBig)
        {
            Gpr[4] = (uint)spv;
        }
        else
        {
            Gpr[4] = (Gpr[4] & ~0xFFFFUL) | (ushort)spv;
        }

        FinishDelivery(newCs, newCpl, gate32 ? (uint)offset : (ushort)offset, trapGate);
        return true;
    }

    private void FinishDelivery(SegmentRegister newCs, int newCpl, ulong rip, bool trapGate)
    {
        Seg[SegCs] = newCs;
        _cpl = newCpl;
        ulong f = GetRflags() & ~(FlagTf | FlagNt | FlagRf | FlagVm);
        if (!trapGate)
        {
            f &= ~FlagIf;
        }

        _flags = f;
        Rip = rip;
        UpdateMode();
    }

    private bool DeliverReal(int vector, ulong returnRip)
    {
        if ((ulong)(vector * 4 + 3) > Idtr.Limit)
        {
            return Gp(0);
        }

        if (!ReadSys(Idtr.Base + (ulong)(vector * 4), 4, out ulong ivt))
        {
            return false;
        }

        ulong sp0 = Gpr[4];
        if (!Push(GetRflags() & 0xFFFF, 2) || !Push(Seg[SegCs].Selector, 2) || !Push(returnRip & 0xFFFF, 2))
        {
            Gpr[4] = sp0;
            return false;
        }

        _flags &= ~(FlagIf | FlagTf | FlagAc | FlagRf);
        ushort cs = (ushort)(ivt >> 16);
        Seg[SegCs].Selector = cs;
        Seg[SegCs].Base = (ulong)cs << 4;
        Rip = ivt & 0xFFFF;
        UpdateMode();
        return true;
    }

    // ---- IRET --------------------------------------------------------------------------------------------------

    private void ExecIret(Iced.Intel.Code code)
    {
        int opSize = code switch
        {
            Iced.Intel.Code.Iretw => 2,
            Iced.Intel.Code.Iretq => 8,
            _ => 4,
        };

        if (_protected && (_flags & (FlagNt | FlagVm)) == FlagNt)
        {
            // Nested-task return (SDM IRET, TASK-RETURN); IA-32e mode has no task switches (#GP(0)).
            if (_longMode)
            {
                _ = Gp(0);
            }
            else
            {
                TaskReturn();
            }

            return;
        }

        if (!PeekStack(0, opSize, out ulong ip) || !PeekStack(opSize, opSize, out ulong csv) || !PeekStack(2 * opSize, opSize, out ulong fl))
        {
            return;
        }

        if (!_protected)
        {
            SetSp(StackWrap(Gpr[4] + (ulong)(3 * opSize)));
            ushort sel = (ushort)csv;
            Seg[SegCs].Selector = sel;
            Seg[SegCs].Base = (ulong)sel << 4;
            ulong keep = opSize == 2 ? GetRflags() & ~0xFFFFUL : GetRflags() & (FlagVm | FlagVif | FlagVip);
            SetRflags(keep | (opSize == 2 ? fl & 0xFFFF : fl & ~(FlagVm | FlagVif | FlagVip)));
            _nextRip = opSize == 2 ? (ushort)ip : (uint)ip;
            UpdateMode();
            UnblockNmi();
            return;
        }

        if ((_flags & FlagVm) != 0)
        {
            // Virtual-8086 mode is not supported.
            _ = Gp(0);
            return;
        }

        if (!_longMode && opSize == 4 && (fl & FlagVm) != 0 && _cpl == 0)
        {
            _ = Gp(0);
            return;
        }

        ushort csSel = (ushort)csv;
        int rpl = csSel & 3;
        uint err = (uint)(csSel & ~3);
        if ((csSel & ~3) == 0)
        {
            _ = Gp(0);
            return;
        }

        if (rpl < _cpl)
        {
            _ = Gp(err);
            return;
        }

        if (!ReadDescriptor(csSel, out ulong d, out ulong addr))
        {
            return;
        }

        bool conforming = ((d >> 42) & 1) != 0;
        if (!IsCode(d) || (conforming ? DescDpl(d) > rpl : DescDpl(d) != rpl))
        {
            _ = Gp(err);
            return;
        }

        if (_longMode && ((d >> 53) & 1) != 0 && ((d >> 54) & 1) != 0)
        {
            _ = Gp(err);
            return;
        }

        if (!DescPresent(d))
        {
            _ = Fault(ExceptionVector.SegmentNotPresent, err);
            return;
        }

        var newCs = DescriptorToCache(csSel, d | (1UL << 40));
        bool target64 = _longMode && newCs.Long;
        if (target64 ? !IsCanonical(ip) : false)
        {
            _ = Gp(0);
            return;
        }

        bool popStack = rpl > _cpl || _bitness == 64;
        ulong newSp = 0, ssv = 0;
        if (popStack && (!PeekStack(3 * opSize, opSize, out newSp) || !PeekStack(4 * opSize, opSize, out ssv)))
        {
            return;
        }

        int oldCpl = _cpl;
        ulong oldFlagsBefore = GetRflags();
        var savedCs = Seg[SegCs];
        var savedSs = Seg[SegSs];
        ulong savedSp = Gpr[4];

        // Load the new CS first so the SS checks below run at the new CPL.
        Seg[SegCs] = newCs;
        _cpl = rpl;
        UpdateMode();
        if (popStack)
        {
            ushort ssSel = (ushort)ssv;
            bool ok;
            if ((ssSel & ~3) == 0 && _longMode && target64 && rpl < 3)
            {
                Seg[SegSs] = new SegmentRegister { Selector = ssSel, Unusable = true, Dpl = (byte)rpl };
                ok = true;
            }
            else
            {
                ok = LoadSegment(SegSs, ssSel);
            }

            if (!ok)
            {
                Seg[SegCs] = savedCs;
                Seg[SegSs] = savedSs;
                _cpl = oldCpl;
                UpdateMode();
                return;
            }

            Gpr[4] = opSize == 8 ? newSp : opSize == 4 ? (uint)newSp : (savedSp & ~0xFFFFUL) | (ushort)newSp;
        }
        else
        {
            Gpr[4] = StackWrap(savedSp + (ulong)(3 * opSize));
            if (!Seg[SegSs].DefaultBig && _bitness != 64)
            {
                Gpr[4] = (savedSp & ~0xFFFFUL) | (ushort)Gpr[4];
            }
        }

        MarkAccessed(addr, d);
        ApplyPoppedFlags(fl, opSize, oldCpl, oldFlagsBefore);
        _nextRip = opSize == 2 ? (ushort)ip : opSize == 4 ? (uint)ip : ip;
        if (rpl > oldCpl)
        {
            NullifyDataSegmentsForCpl();
        }

        UnblockNmi();
        UpdateMode();
    }

    /// <summary>IRET ends NMI blocking (SDM Vol. 3A §6.7.1); an NMI that arrived meanwhile is taken after it.</summary>
    private void UnblockNmi()
    {
        _nmiBlocked = false;
        if (_nmiPending)
        {
            _attention = true;
        }
    }

    /// <summary>RFLAGS update of IRET/POPF: IOPL only at CPL 0, IF only when CPL ≤ IOPL (SDM IRET / POPF).</summary>
    private void ApplyPoppedFlags(ulong popped, int opSize, int cpl, ulong old)
    {
        ulong changeable = ArithFlags | FlagTf | FlagDf | FlagNt | FlagOf;
        if (opSize >= 4)
        {
            changeable |= FlagAc | FlagId | FlagRf;
        }

        if (cpl == 0)
        {
            changeable |= FlagIopl;
        }

        if (cpl <= (int)((old >> 12) & 3))
        {
            changeable |= FlagIf;
        }

        if (opSize == 2)
        {
            changeable &= 0xFFFF;
        }

        SetRflags((old & ~changeable) | (popped & changeable));
        if ((_flags & FlagIf) != 0)
        {
            _attention = true;
        }
    }
}
