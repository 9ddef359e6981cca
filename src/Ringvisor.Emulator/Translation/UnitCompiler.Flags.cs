// Lazy arithmetic flags in translated code (the same model as Instructions/CpuFlags.cs). A unit that writes flags keeps
// the lazy state (operation, operands, result, size, carry-in) in locals, loaded at entry and stored at every exit, so
// GetRflags() afterwards is what the interpreter would compute. Within a block the last writer's operation and size
// are known at translation time: conditions after SUB/CMP and logic/TEST compare the recorded operands in IL; other
// conditions store the state into the Cpu and call Cpu.Condition. At block leaders the knowledge is dropped (several
// paths meet there).
using System.Reflection.Emit;
using Ringvisor.Emulator.Decoding;
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator.Translation;

internal sealed partial class UnitCompiler
{
    private bool _flagsInLocals;
    private FlagOp? _known;
    private int _knownSize;
    private LocalBuilder _fOp = null!, _fA = null!, _fB = null!, _fRes = null!, _fSize = null!, _fCin = null!;

    private void ScanFlags()
    {
        foreach (var ui in _ins)
        {
            if (WritesFlags(ui.Op.Kind) || ExtraWritesFlags(ui.Extra) || ui.Extra == UnitExtra.Helper)
            {
                _flagsInLocals = true;
            }
        }
    }

    private static bool WritesFlags(FastKind k) => k is FastKind.AluRR or FastKind.AluRI or FastKind.AluRM or FastKind.AluMR or
        FastKind.AluMI or FastKind.TestRR or FastKind.TestRI or FastKind.TestMR or FastKind.TestMI or FastKind.IncR or
        FastKind.DecR or FastKind.ShiftRI or FastKind.ImulRR or FastKind.ImulRM or FastKind.ImulRRI;

    private void DeclareFlagLocals()
    {
        _fOp = _il.DeclareLocal(typeof(int));
        _fA = _il.DeclareLocal(typeof(ulong));
        _fB = _il.DeclareLocal(typeof(ulong));
        _fRes = _il.DeclareLocal(typeof(ulong));
        _fSize = _il.DeclareLocal(typeof(int));
        _fCin = _il.DeclareLocal(typeof(int));
    }

    private void LoadFlags()
    {
        if (!_flagsInLocals)
        {
            return;
        }

        LoadField(Cpu.FieldFlagOp, _fOp);
        LoadField(Cpu.FieldFA, _fA);
        LoadField(Cpu.FieldFB, _fB);
        LoadField(Cpu.FieldFRes, _fRes);
        LoadField(Cpu.FieldFSize, _fSize);
        LoadField(Cpu.FieldFCarryIn, _fCin);
    }

    /// <summary>Stores the lazy-flag locals into the Cpu (at exits, and before calling Cpu.Condition/GetCf).</summary>
    private void StoreFlags()
    {
        if (!_flagsInLocals)
        {
            return;
        }

        StoreField(Cpu.FieldFlagOp, _fOp);
        StoreField(Cpu.FieldFA, _fA);
        StoreField(Cpu.FieldFB, _fB);
        StoreField(Cpu.FieldFRes, _fRes);
        StoreField(Cpu.FieldFSize, _fSize);
        StoreField(Cpu.FieldFCarryIn, _fCin);
    }

    private void LoadField(System.Reflection.FieldInfo f, LocalBuilder l)
    {
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, f);
        St(l);
    }

    private void StoreField(System.Reflection.FieldInfo f, LocalBuilder l)
    {
        _il.Emit(OpCodes.Ldarg_0);
        Ld(l);
        _il.Emit(OpCodes.Stfld, f);
    }

    private void ForgetFlags() => _known = null;

    /// <summary>Commits a lazy flag result (after the instruction's stores succeeded).</summary>
    private void SetFlags(FlagOp op, LocalBuilder? a, LocalBuilder? b, LocalBuilder res, int size, LocalBuilder? carryIn = null)
    {
        LdOrZero(a);
        St(_fA);
        LdOrZero(b);
        St(_fB);
        Ld(res);
        St(_fRes);
        LdI4((int)op);
        St(_fOp);
        LdI4(size);
        St(_fSize);
        if (carryIn is not null)
        {
            Ld(carryIn);
            St(_fCin);
        }

        _known = op;
        _knownSize = size;
    }

    /// <summary>Commits a lazy flag result with a constant second operand (shift counts, INC/DEC's 1).</summary>
    private void SetFlagsConstB(FlagOp op, LocalBuilder a, ulong b, LocalBuilder res, int size, LocalBuilder? carryIn = null)
    {
        LdI8(b);
        St(_t3);
        SetFlags(op, a, _t3, res, size, carryIn);
    }

    private void LdOrZero(LocalBuilder? l)
    {
        if (l is null)
        {
            LdI8(0);
        }
        else
        {
            Ld(l);
        }
    }

    /// <summary>Commits flags computed eagerly (IMUL): CF and OF as given (int32 locals), ZF/SF/PF from the result.</summary>
    private void SetEagerFlags(LocalBuilder res, int size, LocalBuilder cf, LocalBuilder of)
    {
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, Cpu.FieldFlags);
        LdI8(~Cpu.ArithFlags);
        Op(OpCodes.And);
        Ld(res);
        LdI4(size);
        Ld(cf);
        Ld(of);
        Call(Cpu.MethodEagerArithBits);
        Op(OpCodes.Or);
        _il.Emit(OpCodes.Stfld, Cpu.FieldFlags);
        LdI4((int)FlagOp.None);
        St(_fOp);
        _known = FlagOp.None;
    }

    /// <summary>Pushes CF (int32 0/1) as Cpu.GetCf() would return it now.</summary>
    private void EmitCarry()
    {
        if (!_flagsInLocals)
        {
            _il.Emit(OpCodes.Ldarg_0);
            Call(Cpu.MethodGetCf);
            return;
        }

        switch (_known)
        {
            case FlagOp.Sub:
                LdMasked(_fA, _knownSize);
                LdMasked(_fB, _knownSize);
                Op(OpCodes.Clt_Un);
                return;
            case FlagOp.Add:
                LdMasked(_fRes, _knownSize);
                LdMasked(_fA, _knownSize);
                Op(OpCodes.Clt_Un);
                return;
            case FlagOp.Logic:
                LdI4(0);
                return;
            case FlagOp.Inc:
            case FlagOp.Dec:
                Ld(_fCin);
                return;
            default:
                StoreFlags();
                _il.Emit(OpCodes.Ldarg_0);
                Call(Cpu.MethodGetCf);
                return;
        }
    }

    private void LdMasked(LocalBuilder l, int size)
    {
        Ld(l);
        Mask(size);
    }

    /// <summary>Pushes condition <paramref name="cc"/> (SDM Vol. 1 Appendix B, low 4 bits of Jcc) as int32 0/1.</summary>
    private void EmitCondition(int cc)
    {
        if (_flagsInLocals && _known == FlagOp.Sub && cc is (>= 2 and <= 7) or (>= 12 and <= 15))
        {
            int s = _knownSize;
            bool signed = cc >= 12;
            Ld(_fA);
            if (signed)
            {
                SignExtend(s);
            }
            else
            {
                Mask(s);
            }

            Ld(_fB);
            if (signed)
            {
                SignExtend(s);
            }
            else
            {
                Mask(s);
            }

            switch (cc)
            {
                case 2: Op(OpCodes.Clt_Un); break;                 // B: a < b
                case 3: Op(OpCodes.Clt_Un); Not(); break;          // AE
                case 4: Op(OpCodes.Ceq); break;                    // E
                case 5: Op(OpCodes.Ceq); Not(); break;             // NE
                case 6: Op(OpCodes.Cgt_Un); Not(); break;          // BE
                case 7: Op(OpCodes.Cgt_Un); break;                 // A
                case 12: Op(OpCodes.Clt); break;                   // L
                case 13: Op(OpCodes.Clt); Not(); break;            // GE
                case 14: Op(OpCodes.Cgt); Not(); break;            // LE
                default: Op(OpCodes.Cgt); break;                   // G
            }

            return;
        }

        if (_flagsInLocals && _known == FlagOp.Logic && cc is (>= 2 and <= 9) or (>= 12 and <= 15))
        {
            int s = _knownSize;
            switch (cc)
            {
                case 2:
                    LdI4(0);
                    return;
                case 3:
                    LdI4(1);
                    return;
                case 4:
                case 6:
                    LdZero(s);
                    return;
                case 5:
                case 7:
                    LdZero(s);
                    Not();
                    return;
                case 8:
                case 12:
                    LdSign(s);
                    return;
                case 9:
                case 13:
                    LdSign(s);
                    Not();
                    return;
                case 14:
                    LdZero(s);
                    LdSign(s);
                    Op(OpCodes.Or);
                    return;
                default:
                    LdZero(s);
                    LdSign(s);
                    Op(OpCodes.Or);
                    Not();
                    return;
            }
        }

        // The general case: the Cpu evaluates its (now current) lazy state.
        StoreFlags();
        _il.Emit(OpCodes.Ldarg_0);
        LdI4(cc);
        Call(Cpu.MethodCondition);
    }

    /// <summary>Pushes (fRes masked to size) == 0.</summary>
    private void LdZero(int size)
    {
        LdMasked(_fRes, size);
        LdI8(0);
        Op(OpCodes.Ceq);
    }

    /// <summary>Pushes the sign bit of fRes at size.</summary>
    private void LdSign(int size)
    {
        Ld(_fRes);
        SignExtend(size);
        LdI8(0);
        Op(OpCodes.Clt);
    }

    /// <summary>Logical not of the int32 0/1 on the stack.</summary>
    private void Not()
    {
        LdI4(0);
        Op(OpCodes.Ceq);
    }
}
