// Memory operands in translated code: effective addresses (Cpu.FastLinear), and loads/stores through out-of-line,
// size-specialised wrappers of the Cpu's own accessors (ReadMem/WriteMem check the current CPL, translate through the
// MMU and record faults), with a branch to the instruction's fault exit when they return false. Out of line because
// inlining the MMU fast path at every access multiplied the JIT time per unit.
using System.Reflection.Emit;
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Decoding;
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator.Translation;

internal sealed partial class UnitCompiler
{
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

    /// <summary>Computes the linear address of the memory operand into _la (and Cpu._stackSegment, as FastLinear does).</summary>
    private void EmitLinear(ref FastOp op)
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

        St(_la);
        SetStackSegment(op.Seg == Cpu.SegSs);
    }

    private void SetStackSegment(bool stack)
    {
        _il.Emit(OpCodes.Ldarg_0);
        LdI4(stack ? 1 : 0);
        _il.Emit(OpCodes.Stfld, Cpu.FieldStackSegment);
    }

    /// <summary>Reads <paramref name="size"/> bytes at _la into <paramref name="into"/>; exits with the fault on failure.</summary>
    private void EmitRead(int size, LocalBuilder into)
    {
        // Only _rv has its address taken (address-exposed locals are kept in memory by the JIT).
        _il.Emit(OpCodes.Ldarg_0);
        Ld(_la);
        _il.Emit(OpCodes.Ldloca, _rv);
        Call(Cpu.TranslatedReadMethod(size));
        _il.Emit(OpCodes.Brfalse, FaultStub());
        Ld(_rv);
        St(into);
    }

    /// <summary>Writes <paramref name="value"/> at _la; exits with the fault on failure. Leaves in _status whether the
    /// unit must exit after the instruction (checked by EmitStoreCheck once the instruction has committed).</summary>
    private void EmitWrite(int size, LocalBuilder value)
    {
        _il.Emit(OpCodes.Ldarg_0);
        Ld(_la);
        Ld(value);
        LdI8(_physPage);
        LdI4(_generation);
        Call(Cpu.TranslatedWriteMethod(size));
        St(_status);
        Ld(_status);
        LdI4(1);
        _il.Emit(OpCodes.Beq, FaultStub());
    }

    /// <summary>_la = RSP-relative stack address (SS has base 0 in 64-bit mode; Cpu.Linear marks the access as SS).</summary>
    private void EmitStackLinear(LocalBuilder sp)
    {
        Ld(sp);
        St(_la);
        SetStackSegment(true);
    }
}
