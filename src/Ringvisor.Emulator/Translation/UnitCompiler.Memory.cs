// Memory operands in translated code: effective addresses (Cpu.FastLinear), an inline TLB test per access, and on a
// miss either an exit that leaves the instruction to the interpreter (MissExit) or, in demoted regions and a few
// forms, a call to out-of-line, size-specialised wrappers of the Cpu's own accessors (ReadMem/WriteMem check the
// current CPL, translate through the MMU and record faults), with a branch to the instruction's fault exit when they
// return false. Out of line because inlining the MMU fast path at every access multiplied the JIT time per unit.
//
// The JIT's time grows with the IL statements it imports (each local store, field store or branch is one), so an
// access is emitted as few of them as possible: the address and the stored value go straight onto the IL stack as
// the call's arguments, a loaded value is left on the stack for its consumer, Cpu._stackSegment is written on the
// slow path only (round 6: it was a store on the main path whenever it changed within a block), and the instruction's
// exit data is set before the arguments are pushed (a store to a local with the call's result still on the stack
// would make the JIT spill it into a temporary).
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Decoding;
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator.Translation;

internal sealed partial class UnitCompiler
{
    // Whether the memory access being emitted goes through SS. Only the accessors read Cpu._stackSegment (#SS or #GP
    // for a non-canonical address), so the unit stores it on an access's slow path, right before the accessor call,
    // not on the main path (helpers set it themselves, as the interpreter does).
    private bool _stackAccess;

    /// <summary>Pushes the effective address of the FastOp's memory operand (no segment base).</summary>
    private void EmitEffectiveAddress(ref FastOp op)
    {
        LdI8((ulong)op.Disp);
        if (op.Base == FastOp.RipBase)
        {
            // RIP-relative: relative to the next instruction's linear address.
            _il.Emit(OpCodes.Ldarg_1);
            LdI8((ulong)Cur.NextOffset);
            Op(OpCodes.Add);
            Op(OpCodes.Add);
        }
        else if (op.Base != FastOp.NoReg)
        {
            LdReg(op.Base);
            Op(OpCodes.Add);
        }

        if (op.Index != FastOp.NoReg)
        {
            LdReg(op.Index);
            if (op.Scale != 0)
            {
                LdI4(op.Scale);
                Op(OpCodes.Shl);
            }

            Op(OpCodes.Add);
        }

        if (op.AddrSize == 4)
        {
            Mask(4);
        }
    }

    /// <summary>Pushes the linear address of the memory operand (the caller has set the stack-segment flag).</summary>
    private void EmitLinearAddress(ref FastOp op)
    {
        EmitEffectiveAddress(ref op);
        if (op.Seg >= Cpu.SegFs)
        {
            _il.Emit(OpCodes.Ldarg_0);
            _il.Emit(OpCodes.Ldfld, Cpu.FieldSeg);
            LdI4(op.Seg);
            _il.Emit(OpCodes.Ldelema, typeof(SegmentRegister));
            _il.Emit(OpCodes.Ldfld, typeof(SegmentRegister).GetField(nameof(SegmentRegister.Base))!);
            Op(OpCodes.Add);
        }
    }

    /// <summary>Computes the linear address of the memory operand into _la (whether it goes through SS: for the slow
    /// path's Cpu._stackSegment, as FastLinear sets it), for read-modify-write forms that access it twice.</summary>
    private void EmitLinear(ref FastOp op)
    {
        NoteStackAccess(op.Seg == Cpu.SegSs);
        EmitLinearAddress(ref op);
        St(_la);
    }

    /// <summary>Records whether the access being emitted goes through SS (nothing is emitted here).</summary>
    private void NoteStackAccess(bool stack) => _stackAccess = stack;

    /// <summary>On an access's slow path, before the accessor call: Cpu._stackSegment for the access.</summary>
    private void EmitStackSegmentForAccessor()
    {
        _il.Emit(OpCodes.Ldarg_0);
        LdI4(_stackAccess ? 1 : 0);
        _il.Emit(OpCodes.Stfld, Cpu.FieldStackSegment);
    }

    /// <summary>Pushes the <paramref name="size"/>-byte value of the FastOp's memory operand; exits with the fault on failure.</summary>
    private void EmitReadOperand(ref FastOp op, int size)
    {
        NoteStackAccess(op.Seg == Cpu.SegSs);
        EmitLinearAddress(ref op);
        EmitReadCall(size);
    }

    /// <summary>Pushes the <paramref name="size"/>-byte value at _la; exits with the fault on failure.</summary>
    private void EmitReadLinear(int size)
    {
        Ld(_la);
        EmitReadCall(size);
    }

    /// <summary>Pushes the qword at the stack address in <paramref name="sp"/> (SS: base 0 in 64-bit mode); exits with
    /// the fault on failure.</summary>
    private void EmitReadStack(LocalBuilder sp)
    {
        NoteStackAccess(true);
        Ld(sp);
        EmitReadCall(8);
    }

    /// <summary>With the address on the stack: the inline TLB read or the accessor call with its fault branch, then
    /// pushes the value.</summary>
    private void EmitReadCall(int size)
    {
        // Fast path inline: the current class's TLB slot for the page holds a read tag for it (a RAM page, readable
        // now) and the access stays inside the page; then the value is read from host memory directly. Otherwise the
        // unit leaves the instruction to the interpreter (MissExit), or where it cannot, calls the accessor (which
        // also walks, faults and handles MMIO).
        St(_ra);
        if (MissExit() is { } miss)
        {
            EmitTlbHostAddress(_ra, s_fieldReadTag, size, MissBranch(miss));
            EmitLoadIndirect(size);
            return;
        }

        var fault = FaultStubForSlowPath();
        var slow = _il.DefineLabel();
        var done = _il.DefineLabel();
        EmitTlbHostAddress(_ra, s_fieldReadTag, size, slow);
        EmitLoadIndirect(size);

        St(_rv2);
        _il.Emit(OpCodes.Br, done);
        _il.MarkLabel(slow);

        // Only _rv has its address taken (address-exposed locals are kept in memory by the JIT).
        EmitCurrentOnSlowPath();
        EmitStackSegmentForAccessor();
        _il.Emit(OpCodes.Ldarg_0);
        Ld(_ra);
        _il.Emit(OpCodes.Ldloca, _rv);
        LocalWritten(_rv);
        Call(Cpu.TranslatedReadMethod(size));
        _il.Emit(OpCodes.Brfalse, fault);
        Ld(_rv);
        St(_rv2);
        _il.MarkLabel(done);
        Ld(_rv2);
    }

    /// <summary>
    /// The inline TLB test: branches to <paramref name="slow"/> unless the current class's slot for the address holds
    /// <paramref name="tag"/> (read or write tag) for its page and the <paramref name="size"/>-byte access stays inside
    /// the page; otherwise pushes the host address of the access.
    /// </summary>
    /// <remarks>
    /// One compare covers both conditions: the tag is compared with the page of the access's last byte. The slot is
    /// the one of the first byte's page (index = page number mod <see cref="Memory.Mmu.TlbSets"/>), so a tag equal to
    /// the last byte's page means that page has the same index, which the next page never has: the access is inside
    /// one page. (Tags with flag bits never equal a page address.) Saves a mask, a compare and a branch per access in
    /// IL the JIT compiles for every unit.
    /// </remarks>
    private void EmitTlbHostAddress(LocalBuilder address, System.Reflection.FieldInfo tag, int size, Label slow)
    {
        EmitTlbSlot(address);
        _il.Emit(OpCodes.Ldfld, tag);
        Ld(address);
        if (size > 1)
        {
            LdI8((ulong)(size - 1));
            Op(OpCodes.Add);
        }

        LdI8(~0xFFFUL);
        Op(OpCodes.And);
        _il.Emit(OpCodes.Bne_Un, slow);
        Ld(_eref);
        _il.Emit(OpCodes.Ldfld, s_fieldHostAddend);
        Ld(address);
        Op(OpCodes.Conv_I);
        Op(OpCodes.Add);
    }

    /// <summary>_eref = the current class's TLB slot for the address in <paramref name="address"/>; leaves _eref pushed.</summary>
    private void EmitTlbSlot(LocalBuilder address)
    {
        // Byte offset of the slot = ((address >> 12) & (TlbSets - 1)) * 64, computed as (address >> 6) masked: a shift
        // and an AND in native width (TlbEntry is padded to 64 bytes for this).
        Ld(_tlbBase);
        Ld(address);
        LdI4(12 - TlbEntryShift);
        Op(OpCodes.Shr_Un);
        LdI8((ulong)(Memory.Mmu.TlbSets - 1) << TlbEntryShift);
        Op(OpCodes.And);
        Op(OpCodes.Conv_U);
        Op(OpCodes.Add);
        St(_eref);
        Ld(_eref);
    }

    /// <summary>log2 of the TLB slot size (checked once: the slot computation above depends on it).</summary>
    private static readonly int TlbEntryShift = Unsafe.SizeOf<Memory.TlbEntry>() == 64
        ? 6
        : throw new InvalidOperationException("translator: TlbEntry must be 64 bytes");

    private static readonly System.Reflection.FieldInfo s_fieldWriteTag = typeof(Memory.TlbEntry).GetField(nameof(Memory.TlbEntry.WriteTag))!;
    private static readonly System.Reflection.FieldInfo s_fieldReadTag = typeof(Memory.TlbEntry).GetField(nameof(Memory.TlbEntry.ReadTag))!;
    private static readonly System.Reflection.FieldInfo s_fieldHostAddend = typeof(Memory.TlbEntry).GetField(nameof(Memory.TlbEntry.HostAddend))!;

    /// <summary>
    /// Writes the value <paramref name="pushValue"/> pushes at the address <paramref name="pushAddress"/> pushes (both
    /// emit loads only). A <paramref name="plain"/> store (MOV: nothing to commit after it) takes one branch to a
    /// shared block that tells a fault from a store exit; otherwise a fault exits here and _status tells
    /// EmitStoreCheck, after the instruction's commit, whether the unit must leave (Cpu.TranslatedWriteMethod).
    /// </summary>
    private void EmitWrite(int size, Action pushAddress, Action pushValue, bool plain)
    {
        if (MissExit() is { } miss)
        {
            // As for loads: a failed test leaves the instruction to the interpreter (nothing of it has happened yet:
            // an instruction's loads come before its stores, and its commit after them). The fast path cannot have
            // touched code or raised attention, so the store check that follows finds a zero status (a constant the
            // JIT folds away).
            pushAddress();
            St(_wa);
            pushValue();
            St(_wv);
            EmitTlbHostAddress(_wa, s_fieldWriteTag, size, MissBranch(miss));
            Ld(_wv);
            EmitStoreIndirect(size);
            if (!plain)
            {
                LdI4(0);
                St(_status);
            }

            return;
        }

        // A plain store's exit data goes on its slow path (the only path that faults or exits); any other store's
        // store check, after the instruction's commit, needs it on the main path anyway.
        var fault = plain ? FaultStubForSlowPath() : FaultStub();

        // Fast path inline, as for reads: a write tag (a RAM page holding no decoded code, writable now, dirty bit
        // already set) and an access inside the page store to host memory directly. Such a store cannot change the
        // unit's own page (which holds code) or raise attention (no MMIO), so it needs no exit check.
        var slow = _il.DefineLabel();
        var done = _il.DefineLabel();
        pushAddress();
        St(_wa);
        pushValue();
        St(_wv);
        EmitTlbHostAddress(_wa, s_fieldWriteTag, size, slow);
        Ld(_wv);
        EmitStoreIndirect(size);

        if (!plain)
        {
            LdI4(0);
            St(_status);
        }

        _il.Emit(OpCodes.Br, done);
        _il.MarkLabel(slow);
        EmitWriteCall(size, plain, fault);

        _il.MarkLabel(done);
    }

    /// <summary>The accessor call for a write of _wv at _wa (the slow path of <see cref="EmitWrite"/>).</summary>
    private void EmitWriteCall(int size, bool plain, Label fault)
    {
        EmitCurrentOnSlowPath();
        EmitStackSegmentForAccessor();
        _il.Emit(OpCodes.Ldarg_0);
        Ld(_wa);
        Ld(_wv);
        LdCurrentPage();
        Call(Cpu.TranslatedWriteMethod(size));
        St(_status);
        Ld(_status);
        if (plain)
        {
            _storeExitUsed = true;
            _storeOrFaultUsed = true;
            _il.Emit(OpCodes.Brtrue, _storeOrFault);
            return;
        }

        LdI4(1);
        _il.Emit(OpCodes.Beq, fault);
    }

    /// <summary>A store of the FastOp's memory operand with nothing to commit after it (MOV m, r/imm).</summary>
    private void EmitPlainStore(ref FastOp op, int size, Action pushValue)
    {
        var fop = op;
        NoteStackAccess(op.Seg == Cpu.SegSs);
        EmitWrite(size, () => EmitLinearAddress(ref fop), pushValue, plain: true);
    }
}
