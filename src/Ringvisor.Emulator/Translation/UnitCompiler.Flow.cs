// Control flow and the stack (Jcc, JMP/CALL rel, RET, PUSH/POP r64), mirroring Instructions/InterpFast.cs. Branches to
// instructions of the unit become IL branches (with the budget/attention check when backward); other targets exit.
// Targets on another page are checked for canonical form at run time; a non-canonical one is left to the interpreter,
// which raises the #GP.
using System.Reflection.Emit;
using Ringvisor.Emulator.Decoding;
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator.Translation;

internal sealed partial class UnitCompiler
{
    private static bool InPage(long offset) => offset is >= 0 and < PageSize;

    private bool EmitFlow(UnitInstruction ui, ref FastOp op)
    {
        switch (op.Kind)
        {
            case FastKind.Jcc:
                {
                    EmitCondition(op.Aux);
                    var notTaken = _il.DefineLabel();
                    _il.Emit(OpCodes.Brfalse, notTaken);
                    EmitBranchTo(ui.BranchTarget);
                    _il.MarkLabel(notTaken);
                    return true;
                }

            case FastKind.Jmp:
                EmitBranchTo(ui.BranchTarget);
                return false;
            case FastKind.CallRel:
                {
                    long target = ui.BranchTarget;
                    if (!InPage(target))
                    {
                        EmitCanonicalCheck(target);
                    }

                    // Faults and the store check after the push continue from the call's target.
                    EnsureCurrent(target);

                    // sp = rsp - 8; [sp] = return address; rsp = sp.
                    EmitLoadReturnAddress(ui);
                    EmitPushValueUnchecked();
                    EmitStoreCheck(target, false);
                    EmitGotoAfterCheck(target);
                    return false;
                }

            case FastKind.Ret:
                {
                    LdReg(4);
                    St(_t0);
                    EmitStackLinear(_t0);
                    EmitRead(8, _t1);
                    Ld(_t1);
                    Call(Cpu.MethodIsCanonical);
                    _il.Emit(OpCodes.Brfalse, FallbackStub());
                    Ld(_t0);
                    LdI8(8);
                    Op(OpCodes.Add);
                    St(_reg[4]!);
                    Ld(_t1);
                    St(_exitRip);
                    _il.Emit(OpCodes.Br, Stub(TranslationExit.Indirect, 0, true, AdjustAfter));
                    return false;
                }

            case FastKind.PushR:
                LdReg(op.Src);
                St(_val);
                EmitPushValue(ui);
                return true;
            case FastKind.PopR:
                LdReg(4);
                St(_t0);
                EmitStackLinear(_t0);
                EmitRead(8, _val);
                Ld(_t0);
                LdI8(8);
                Op(OpCodes.Add);
                St(_reg[4]!);
                Ld(_val);
                St(_reg[op.Dst]!);
                return true;
            default:
                return EmitExtra(ui);
        }
    }

    /// <summary>Transfers control to page offset <paramref name="target"/> (checked for canonical form when off-page).</summary>
    private void EmitBranchTo(long target)
    {
        if (!InPage(target))
        {
            EmitCanonicalCheck(target);
        }

        EmitGotoAfterCheck(target);
    }

    private void EmitGotoAfterCheck(long target) => EmitGoto(target, TranslationExit.Branch);

    /// <summary>Leaves the current instruction to the interpreter when pageBase + target is not canonical.</summary>
    private void EmitCanonicalCheck(long target)
    {
        _il.Emit(OpCodes.Ldarg_1);
        LdI8((ulong)target);
        Op(OpCodes.Add);
        Call(Cpu.MethodIsCanonical);
        _il.Emit(OpCodes.Brfalse, FallbackStub());
    }

    /// <summary>PUSH of the 64-bit value in _val, then the store check (self-modifying code, attention).</summary>
    private void EmitPushValue(UnitInstruction ui)
    {
        EmitPushValueUnchecked();
        EmitStoreCheck(ui.NextOffset, false);
    }

    /// <summary>Stores _val at RSP-8 (which may fault, RSP unchanged), then commits RSP; the caller does the store check.</summary>
    private void EmitPushValueUnchecked()
    {
        LdReg(4);
        LdI8(8);
        Op(OpCodes.Sub);
        St(_t0);
        EmitStackLinear(_t0);
        EmitWrite(8, _val);
        Ld(_t0);
        St(_reg[4]!);
    }

    /// <summary>_val = the guest address of the instruction after <paramref name="ui"/> (a CALL's return address).</summary>
    private void EmitLoadReturnAddress(UnitInstruction ui)
    {
        _il.Emit(OpCodes.Ldarg_1);
        LdI8((ulong)ui.NextOffset);
        Op(OpCodes.Add);
        St(_val);
    }
}
