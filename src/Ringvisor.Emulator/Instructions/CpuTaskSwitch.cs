// Hardware task switches in 32-bit protected mode (SDM Vol. 3A chapter 7): JMP/CALL far to a TSS descriptor or a
// task gate, a task gate in the IDT, and IRET with EFLAGS.NT=1 (task return through the previous-task link). The
// steps and fault order follow §7.3 and Table 7-1 and the TASK-SWITCH parts of the JMP/CALL/INT n/IRET pseudo-code
// (SDM Vol. 2). Only the 32-bit TSS (§7.2.1, Figure 7-2) is supported: a 16-bit (286) TSS raises #GP(selector).
// In IA-32e mode task switches do not exist; callers never get here there.
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Exceptions;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    // System descriptor types (SDM Vol. 3A §3.5, Table 3-2).
    private const int TypeTaskGate = 5, TypeTss32Available = 9, TypeTss32Busy = 0xB, TypeLdt = 2;

    // 32-bit TSS field offsets (SDM Vol. 3A §7.2.1, Figure 7-2) and its minimum limit (§7.2.2: 67H).
    private const ulong TssLink = 0x00, TssCr3 = 0x1C, TssEip = 0x20, TssEflags = 0x24, TssEax = 0x28, TssEs = 0x48;
    private const ulong TssLdt = 0x60, TssTrap = 0x64, TssMinLimit = 0x67;

    // DR6.BT: the debug exception came from a task switch to a TSS with T=1 (SDM Vol. 3A §18.2.3).
    private const ulong Dr6Bt = 1 << 15;

    private enum TaskSwitchKind
    {
        Jmp,
        Call,
        Iret,
        Interrupt,
    }

    /// <summary>
    /// JMP/CALL far to a system descriptor in protected mode: a TSS or a task gate switches tasks (SDM Vol. 2A
    /// JMP/CALL, "TASK-GATE" and "TASK-STATE-SEGMENT"); anything else (call gates, LDT) is #GP(selector).
    /// </summary>
    private void FarTransferSystem(ushort sel, ulong desc, bool call)
    {
        uint err = (uint)(sel & ~3);
        int type = (int)((desc >> 40) & 0xF);
        int dpl = DescDpl(desc);
        int maxPriv = Math.Max(_cpl, sel & 3);
        var kind = call ? TaskSwitchKind.Call : TaskSwitchKind.Jmp;
        if (_longMode)
        {
            _ = Gp(err);
            return;
        }

        if (type == TypeTaskGate)
        {
            if (dpl < maxPriv)
            {
                _ = Gp(err);
                return;
            }

            if (!DescPresent(desc))
            {
                _ = Fault(ExceptionVector.SegmentNotPresent, err);
                return;
            }

            ushort tssSel = (ushort)(desc >> 16);
            if (!ReadGdtTss(tssSel, ExceptionVector.GeneralProtection, 0, out ulong td, out ulong tdAddr))
            {
                return;
            }

            if (IsCodeOrDataDesc(td) || ((td >> 40) & 0xF) != TypeTss32Available)
            {
                _ = Gp((uint)(tssSel & ~3));
                return;
            }

            if (!DescPresent(td))
            {
                _ = Fault(ExceptionVector.SegmentNotPresent, (uint)(tssSel & ~3));
                return;
            }

            _ = SwitchTasks(tssSel, td, tdAddr, kind, _nextRip, GetRflags(), 0, false, 0);
            return;
        }

        // A TSS descriptor must be in the GDT; busy, 16-bit or any other system type is #GP(selector).
        if (type != TypeTss32Available || (sel & 4) != 0 || dpl < maxPriv)
        {
            _ = Gp(err);
            return;
        }

        if (!DescPresent(desc))
        {
            _ = Fault(ExceptionVector.SegmentNotPresent, err);
            return;
        }

        ulong addr = Gdtr.Base + (ulong)(sel & ~7);
        _ = SwitchTasks(sel, desc, addr, kind, _nextRip, GetRflags(), 0, false, 0);
    }

    /// <summary>An interrupt or exception through a task gate in the IDT (SDM Vol. 2A INT n, "TASK-GATE").</summary>
    private bool DeliverThroughTaskGate(ulong gate, ulong returnEip, ulong savedFlags, uint ext, bool hasError, uint error)
    {
        ushort tssSel = (ushort)(gate >> 16);
        uint tssErr = (uint)(tssSel & ~3) | ext;
        if (!ReadGdtTss(tssSel, ExceptionVector.GeneralProtection, ext, out ulong td, out ulong tdAddr))
        {
            return false;
        }

        if (IsCodeOrDataDesc(td) || ((td >> 40) & 0xF) != TypeTss32Available)
        {
            return Gp(tssErr);
        }

        if (!DescPresent(td))
        {
            return Fault(ExceptionVector.SegmentNotPresent, tssErr);
        }

        return SwitchTasks(tssSel, td, tdAddr, TaskSwitchKind.Interrupt, returnEip, savedFlags, ext, hasError, error);
    }

    /// <summary>IRET with NT=1 in protected mode: return to the task in the previous-task link (SDM IRET, TASK-RETURN).</summary>
    private void TaskReturn()
    {
        if (!ReadSys(Tr.Base + TssLink, 2, out ulong link))
        {
            return;
        }

        ushort sel = (ushort)link;
        if (!ReadGdtTss(sel, ExceptionVector.InvalidTss, 0, out ulong td, out ulong tdAddr))
        {
            return;
        }

        if (IsCodeOrDataDesc(td) || ((td >> 40) & 0xF) != TypeTss32Busy)
        {
            _ = Fault(ExceptionVector.InvalidTss, (uint)(sel & ~3));
            return;
        }

        if (!DescPresent(td))
        {
            _ = Fault(ExceptionVector.SegmentNotPresent, (uint)(sel & ~3));
            return;
        }

        if (SwitchTasks(sel, td, tdAddr, TaskSwitchKind.Iret, _nextRip, GetRflags(), 0, false, 0))
        {
            UnblockNmi();
        }
    }

    /// <summary>Reads a TSS descriptor that must be in the GDT: a local selector or one past the limit faults.</summary>
    private bool ReadGdtTss(ushort sel, int vector, uint ext, out ulong desc, out ulong addr)
    {
        desc = 0;
        addr = Gdtr.Base + (ulong)(sel & ~7);
        if ((sel & 4) != 0 || (ulong)(sel & ~7) + 7 > Gdtr.Limit)
        {
            return Fault(vector, (uint)(sel & ~3) | ext);
        }

        return ReadSys(addr, 8, out desc);
    }

    /// <summary>
    /// SWITCH-TASKS (SDM Vol. 3A §7.3 steps 4-13): the new TSS's limit, the old task's state saved into the old TSS,
    /// busy bits and the task link, CR0.TS, TR, then the new task's CR3, LDTR, EFLAGS, EIP, registers and segments.
    /// Faults while loading the new task's segments are raised in the new task's context (RIP is its EIP).
    /// </summary>
    private bool SwitchTasks(ushort sel, ulong desc, ulong descAddr, TaskSwitchKind kind, ulong oldEip, ulong oldFlags,
        uint ext, bool hasError, uint error)
    {
        uint selErr = (uint)(sel & ~3) | ext;
        var newTr = DescriptorToCache(sel, desc);
        if (newTr.Limit < TssMinLimit)
        {
            return Fault(ExceptionVector.InvalidTss, selErr);
        }

        // Only a 32-bit current TSS can take the saved state.
        if ((Tr.Type & 8) == 0 || Tr.Limit < TssLdt - 1)
        {
            return Fault(ExceptionVector.InvalidTss, (uint)(Tr.Selector & ~3) | ext);
        }

        // Read the whole new task state first, so a page fault on the new TSS changes nothing.
        ulong b = newTr.Base;
        Span<ulong> regs = stackalloc ulong[8];
        Span<ushort> sels = stackalloc ushort[6];
        if (!ReadSys(b + TssCr3, 4, out ulong newCr3) || !ReadSys(b + TssEip, 4, out ulong newEip) ||
            !ReadSys(b + TssEflags, 4, out ulong newFlags) || !ReadSys(b + TssLdt, 2, out ulong ldtSel) ||
            !ReadSys(b + TssTrap, 2, out ulong trap))
        {
            return false;
        }

        for (int i = 0; i < 8; i++)
        {
            if (!ReadSys(b + TssEax + (ulong)(4 * i), 4, out regs[i]))
            {
                return false;
            }
        }

        for (int i = 0; i < 6; i++)
        {
            if (!ReadSys(b + TssEs + (ulong)(4 * i), 2, out ulong s))
            {
                return false;
            }

            sels[i] = (ushort)s;
        }

        if ((newFlags & FlagVm) != 0)
        {
            // Virtual-8086 mode is not supported: refuse the switch before anything changes.
            return Gp(selErr);
        }

        // Save the current task (EIP, EFLAGS, general registers, segment selectors) into the old TSS.
        if (kind == TaskSwitchKind.Iret)
        {
            oldFlags &= ~FlagNt;
        }

        ulong ob = Tr.Base;
        if (!WriteSys(ob + TssEip, 4, (uint)oldEip) || !WriteSys(ob + TssEflags, 4, (uint)oldFlags))
        {
            return false;
        }

        for (int i = 0; i < 8; i++)
        {
            if (!WriteSys(ob + TssEax + (ulong)(4 * i), 4, (uint)Gpr[i]))
            {
                return false;
            }
        }

        for (int i = 0; i < 6; i++)
        {
            if (!WriteSys(ob + TssEs + (ulong)(4 * i), 2, Seg[i].Selector))
            {
                return false;
            }
        }

        // Busy bits (§7.4): JMP and IRET leave the old task, CALL and interrupts nest; the new task is busy.
        if (kind is TaskSwitchKind.Jmp or TaskSwitchKind.Iret)
        {
            ulong oldDescAddr = Gdtr.Base + (ulong)(Tr.Selector & ~7);
            if (!ReadSys(oldDescAddr + 5, 1, out ulong access) || !WriteSys(oldDescAddr + 5, 1, access & ~2UL))
            {
                return false;
            }
        }

        if (kind is TaskSwitchKind.Call or TaskSwitchKind.Interrupt)
        {
            if (!WriteSys(b + TssLink, 2, Tr.Selector))
            {
                return false;
            }

            newFlags |= FlagNt;
        }

        if (kind != TaskSwitchKind.Iret && !WriteSys(descAddr + 5, 1, ((desc >> 40) & 0xFF) | 2))
        {
            return false;
        }

        // Commit: TR, CR0.TS, then the new task's state. From here faults belong to the new task.
        Cr0 |= Cr0Ts;
        Tr = DescriptorToCache(sel, desc | (2UL << 40));
        SetRflags(newFlags);
        for (int i = 0; i < 8; i++)
        {
            Gpr[i] = (uint)regs[i];
        }

        Rip = (uint)newEip;
        _nextRip = Rip;
        _cpl = sels[SegCs] & 3;
        for (int i = 0; i < 6; i++)
        {
            // Selectors first, descriptors after (the hidden parts are not valid until their load succeeds).
            Seg[i] = new SegmentRegister { Selector = sels[i], Unusable = true, Dpl = (byte)(sels[i] & 3), DefaultBig = Seg[i].DefaultBig };
        }

        Ldtr = new SegmentRegister { Selector = (ushort)ldtSel, Unusable = true };
        UpdateMode();

        if ((Cr0 & Cr0Pg) != 0)
        {
            // Flushes non-global translations; under PAE paging a bad PDPTE is #GP(0).
            if (!_mmu.WriteCr3((uint)newCr3))
            {
                return Gp(ext);
            }

            Cr3 = (uint)newCr3;
        }

        if (!LoadTaskLdt((ushort)ldtSel, ext) || !LoadTaskCs(sels[SegCs], ext) || !LoadTaskSs(sels[SegSs], ext))
        {
            return false;
        }

        foreach (int s in (ReadOnlySpan<int>)[SegEs, SegDs, SegFs, SegGs])
        {
            if (!LoadTaskDataSegment(s, sels[s], ext))
            {
                return false;
            }
        }

        UpdateMode();
        if (hasError)
        {
            // The error code goes on the new task's stack (SDM INT n: "Push(error code)").
            _stackSegment = true;
            int size = 4;
            ulong sp = Seg[SegSs].DefaultBig ? (uint)(Gpr[4] - 4) : (ushort)(Gpr[4] - 4);
            if (!WriteLinear((uint)(Seg[SegSs].Base + sp), size, _cpl == 3, error))
            {
                return false;
            }

            Gpr[4] = Seg[SegSs].DefaultBig ? sp : (Gpr[4] & ~0xFFFFUL) | sp;
        }

        if (Rip > Seg[SegCs].Limit)
        {
            return Gp(ext);
        }

        if ((trap & 1) != 0 && kind != TaskSwitchKind.Interrupt)
        {
            // The T flag (§7.2.1): a debug trap once the switch completes, taken before the new task's first
            // instruction (RIP is already its EIP). Not raised for a switch through an IDT task gate.
            Dr[6] |= Dr6Bt;
            _ = Fault(ExceptionVector.Debug);
        }

        return true;
    }

    private bool LoadTaskLdt(ushort sel, uint ext)
    {
        uint err = (uint)(sel & ~3) | ext;
        if ((sel & ~3) == 0)
        {
            return true;
        }

        if ((sel & 4) != 0 || (ulong)(sel & ~7) + 7 > Gdtr.Limit)
        {
            return Fault(ExceptionVector.InvalidTss, err);
        }

        if (!ReadSys(Gdtr.Base + (ulong)(sel & ~7), 8, out ulong d))
        {
            return false;
        }

        if (IsCodeOrDataDesc(d) || ((d >> 40) & 0xF) != TypeLdt || !DescPresent(d))
        {
            return Fault(ExceptionVector.InvalidTss, err);
        }

        Ldtr = DescriptorToCache(sel, d);
        return true;
    }

    /// <summary>Reads a segment descriptor for a task-switch load; a null or out-of-table selector is #TS.</summary>
    private bool ReadTaskDescriptor(ushort sel, uint ext, out ulong d, out ulong addr)
    {
        d = 0;
        bool ldt = (sel & 4) != 0;
        ulong limit = ldt ? Ldtr.Limit : Gdtr.Limit;
        addr = (ldt ? Ldtr.Base : Gdtr.Base) + (ulong)(sel & ~7);
        if ((ldt && Ldtr.Unusable) || (ulong)(sel & ~7) + 7 > limit)
        {
            return Fault(ExceptionVector.InvalidTss, (uint)(sel & ~3) | ext);
        }

        return ReadSys(addr, 8, out d);
    }

    private bool LoadTaskCs(ushort sel, uint ext)
    {
        uint err = (uint)(sel & ~3) | ext;
        if ((sel & ~3) == 0)
        {
            return Fault(ExceptionVector.InvalidTss, err);
        }

        if (!ReadTaskDescriptor(sel, ext, out ulong d, out ulong addr))
        {
            return false;
        }

        bool conforming = ((d >> 42) & 1) != 0;
        int rpl = sel & 3;
        if (!IsCode(d) || (conforming ? DescDpl(d) > rpl : DescDpl(d) != rpl))
        {
            return Fault(ExceptionVector.InvalidTss, err);
        }

        if (!DescPresent(d))
        {
            return Fault(ExceptionVector.SegmentNotPresent, err);
        }

        MarkAccessed(addr, d);
        Seg[SegCs] = DescriptorToCache(sel, d | (1UL << 40));
        return true;
    }

    private bool LoadTaskSs(ushort sel, uint ext)
    {
        uint err = (uint)(sel & ~3) | ext;
        if ((sel & ~3) == 0 || (sel & 3) != _cpl)
        {
            return Fault(ExceptionVector.InvalidTss, err);
        }

        if (!ReadTaskDescriptor(sel, ext, out ulong d, out ulong addr))
        {
            return false;
        }

        bool writableData = IsCodeOrDataDesc(d) && !IsCode(d) && ((d >> 41) & 1) != 0;
        if (!writableData || DescDpl(d) != _cpl)
        {
            return Fault(ExceptionVector.InvalidTss, err);
        }

        if (!DescPresent(d))
        {
            return Fault(ExceptionVector.StackFault, err);
        }

        MarkAccessed(addr, d);
        Seg[SegSs] = DescriptorToCache(sel, d | (1UL << 40));
        return true;
    }

    private bool LoadTaskDataSegment(int seg, ushort sel, uint ext)
    {
        uint err = (uint)(sel & ~3) | ext;
        if ((sel & ~3) == 0)
        {
            Seg[seg] = new SegmentRegister { Selector = sel, Unusable = true, Dpl = (byte)(sel & 3) };
            return true;
        }

        if (!ReadTaskDescriptor(sel, ext, out ulong d, out ulong addr))
        {
            return false;
        }

        bool readable = IsCodeOrDataDesc(d) && (!IsCode(d) || ((d >> 41) & 1) != 0);
        bool conformingCode = IsCode(d) && ((d >> 42) & 1) != 0;
        if (!readable || (!conformingCode && ((sel & 3) > DescDpl(d) || _cpl > DescDpl(d))))
        {
            return Fault(ExceptionVector.InvalidTss, err);
        }

        if (!DescPresent(d))
        {
            return Fault(ExceptionVector.SegmentNotPresent, err);
        }

        MarkAccessed(addr, d);
        Seg[seg] = DescriptorToCache(sel, d | (1UL << 40));
        return true;
    }
}
