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
                    EmitPushValueUnchecked(() => EmitLoadReturnAddress(ui));
                    EmitStoreCheck(target, false);
                    EmitGotoAfterCheck(target);
                    return false;
                }

            case FastKind.Ret:
                {
                    EmitReadStack(_reg[4]!);
                    St(_t1);
                    EmitBranchUnlessCanonical(_t1, FallbackStub());
                    LdReg(4);
                    LdI8(8);
                    Op(OpCodes.Add);
                    St(_reg[4]!);
                    EmitReturnPrediction();
                    Ld(_t1);
                    St(_exitRip);
                    _il.Emit(OpCodes.Br, Stub(TranslationExit.Indirect, 0, true, AdjustAfter));
                    return false;
                }

            case FastKind.PushR:
                {
                    int src = op.Src;
                    EmitPushValue(ui, () => LdReg(src));
                    return true;
                }

            case FastKind.PopR:
                EmitReadStack(_reg[4]!);
                St(_val);
                LdReg(4);
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

    /// <summary>
    /// A RET whose popped address (in _t1) is the return site of one of the unit's CALLs continues there inside the
    /// unit (a trace that went into a callee comes back without the dispatcher); any other address exits as before.
    /// The popped value is compared as an address, so any caller, any recursion depth and a rewritten return address
    /// all end where the architecture says.
    /// </summary>
    private void EmitReturnPrediction()
    {
        foreach (int site in _returnSites)
        {
            var other = _il.DefineLabel();
            Ld(_t1);
            _il.Emit(OpCodes.Ldarg_1);
            LdI8((ulong)(long)site);
            Op(OpCodes.Add);
            _il.Emit(OpCodes.Bne_Un, other);
            EmitGoto(site, TranslationExit.Indirect);
            _il.MarkLabel(other);
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
        St(_w);
        EmitBranchUnlessCanonical(_w, FallbackStub());
    }

    /// <summary>Branches to <paramref name="target"/> unless the address in <paramref name="la"/> is canonical
    /// (Cpu.IsCanonical, written out: one compare instead of a call the JIT has to inline).</summary>
    private void EmitBranchUnlessCanonical(LocalBuilder la, Label target)
    {
        Ld(la);
        LdI4(16);
        Op(OpCodes.Shl);
        LdI4(16);
        Op(OpCodes.Shr);
        Ld(la);
        _il.Emit(OpCodes.Bne_Un, target);
    }

    /// <summary>PUSH of the 64-bit value <paramref name="pushValue"/> pushes (loads only, evaluated before RSP
    /// changes), then the store check (self-modifying code, attention).</summary>
    private void EmitPushValue(UnitInstruction ui, Action pushValue)
    {
        EmitPushValueUnchecked(pushValue);
        if (!UsesMissExit)
        {
            // With the miss exit the store's fast path cannot have touched code (EmitWrite): nothing to check.
            EmitStoreCheck(ui.NextOffset, false);
        }
    }

    /// <summary>Stores the value at RSP-8 (which may fault, RSP unchanged), then commits RSP; the caller does the store
    /// check.</summary>
    private void EmitPushValueUnchecked(Action pushValue)
    {
        NoteStackAccess(true);
        EmitWrite(8, LdRspMinus8, pushValue, plain: false);
        LdRspMinus8();
        St(_reg[4]!);
    }

    private void LdRspMinus8()
    {
        LdReg(4);
        LdI8(8);
        Op(OpCodes.Sub);
    }

    /// <summary>Pushes the guest address of the instruction after <paramref name="ui"/> (a CALL's return address).</summary>
    private void EmitLoadReturnAddress(UnitInstruction ui)
    {
        _il.Emit(OpCodes.Ldarg_1);
        LdI8((ulong)ui.NextOffset);
        Op(OpCodes.Add);
    }
}
