// RFLAGS with lazy arithmetic flags (SDM Vol. 1 §3.4.3, Appendix A): ALU instructions record their operands and
// result; CF/PF/AF/ZF/SF/OF are computed only when read. Flags the SDM leaves undefined follow what Intel cores do
// where cheap (logic ops clear AF; shifts compute OF from the last step for every count).
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    // Bits a guest can change with POPF/IRET in principle (the privilege rules are applied by the callers).
    private const ulong WritableFlags = ArithFlags | FlagTf | FlagIf | FlagDf | FlagIopl | FlagNt | FlagRf | FlagAc | FlagId | FlagVm | FlagVif | FlagVip;

    private ulong _flags = 2;
    private FlagOp _flagOp;
    private ulong _fRes;
    private ulong _fA;
    private ulong _fB;
    private int _fSize = 4;
    private bool _fCarryIn;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong SizeMask(int size) => size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong SignBit(int size) => 1UL << (size * 8 - 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetLazy(FlagOp op, ulong a, ulong b, ulong res, int size)
    {
        _flagOp = op;
        _fA = a;
        _fB = b;
        _fRes = res;
        _fSize = size;
    }

    public ulong GetRflags()
    {
        if (_flagOp != FlagOp.None)
        {
            _flags = (_flags & ~ArithFlags) | ComputeArithFlags();
            _flagOp = FlagOp.None;
        }

        return _flags | 2;
    }

    internal void SetRflags(ulong value)
    {
        _flags = (value & WritableFlags) | 2;
        _flagOp = FlagOp.None;

        // RFLAGS.AC decides whether supervisor accesses may reach user pages under SMAP.
        SyncPrivilege();
    }

    /// <summary>Replaces only the arithmetic flags (CF PF AF ZF SF OF) with <paramref name="bits"/>.</summary>
    internal void SetArithFlags(ulong bits)
    {
        _flags = (_flags & ~ArithFlags) | (bits & ArithFlags);
        _flagOp = FlagOp.None;
    }

    /// <summary>Materialises the lazy flags and returns them, so single bits can be patched (rotates, BT, MUL...).</summary>
    private ulong MaterializeFlags() => GetRflags();

    internal bool IF => (_flags & FlagIf) != 0;

    internal bool DF => (_flags & FlagDf) != 0;

    internal int Iopl => (int)((_flags >> 12) & 3);

    private ulong ComputeArithFlags()
    {
        ulong res = _fRes & SizeMask(_fSize);
        ulong f = 0;
        if (GetCf())
        {
            f |= FlagCf;
        }

        if (GetOf())
        {
            f |= FlagOf;
        }

        if (res == 0)
        {
            f |= FlagZf;
        }

        if ((res & SignBit(_fSize)) != 0)
        {
            f |= FlagSf;
        }

        if ((BitOperations.PopCount(res & 0xFF) & 1) == 0)
        {
            f |= FlagPf;
        }

        switch (_flagOp)
        {
            case FlagOp.Add:
            case FlagOp.Adc:
            case FlagOp.Sub:
            case FlagOp.Sbb:
            case FlagOp.Inc:
            case FlagOp.Dec:
            case FlagOp.Neg:
                f |= (_fA ^ _fB ^ _fRes) & FlagAf;
                break;
        }

        return f;
    }

    internal bool GetCf()
    {
        ulong m = SizeMask(_fSize);
        switch (_flagOp)
        {
            case FlagOp.None:
                return (_flags & FlagCf) != 0;
            case FlagOp.Add:
                return (_fRes & m) < (_fA & m);
            case FlagOp.Adc:
                return _fCarryIn ? (_fRes & m) <= (_fA & m) : (_fRes & m) < (_fA & m);
            case FlagOp.Sub:
                return (_fA & m) < (_fB & m);
            case FlagOp.Sbb:
                return _fCarryIn ? (_fA & m) <= (_fB & m) : (_fA & m) < (_fB & m);
            case FlagOp.Logic:
                return false;
            case FlagOp.Inc:
            case FlagOp.Dec:
                return _fCarryIn;
            case FlagOp.Neg:
                return (_fB & m) != 0;
            case FlagOp.Shl:
                {
                    int bits = _fSize * 8;
                    int c = (int)_fB;
                    return c <= bits && ((_fA >> (bits - c)) & 1) != 0;
                }

            case FlagOp.Shr:
                {
                    int c = (int)_fB;
                    return c <= 64 && (((_fA & m) >> (c - 1)) & 1) != 0;
                }

            case FlagOp.Sar:
                {
                    int c = Math.Min((int)_fB - 1, 63);
                    return (((long)_fA >> c) & 1) != 0;
                }

            default:
                return false;
        }
    }

    internal bool GetOf()
    {
        ulong sb = SignBit(_fSize);
        switch (_flagOp)
        {
            case FlagOp.None:
                return (_flags & FlagOf) != 0;
            case FlagOp.Add:
            case FlagOp.Adc:
                return ((_fA ^ _fRes) & (_fB ^ _fRes) & sb) != 0;
            case FlagOp.Sub:
            case FlagOp.Sbb:
                return ((_fA ^ _fB) & (_fA ^ _fRes) & sb) != 0;
            case FlagOp.Inc:
                return (_fRes & SizeMask(_fSize)) == sb;
            case FlagOp.Dec:
                return (_fRes & SizeMask(_fSize)) == sb - 1;
            case FlagOp.Neg:
                return (_fRes & SizeMask(_fSize)) == sb;
            case FlagOp.Shl:
                return (((_fRes & sb) != 0) ^ GetCf());
            case FlagOp.Shr:
                return (_fA & sb) != 0 && _fB == 1;
            default:
                return false;
        }
    }

    internal bool GetZf() => _flagOp == FlagOp.None ? (_flags & FlagZf) != 0 : (_fRes & SizeMask(_fSize)) == 0;

    internal bool GetSf() => _flagOp == FlagOp.None ? (_flags & FlagSf) != 0 : (_fRes & SignBit(_fSize)) != 0;

    internal bool GetPf() => _flagOp == FlagOp.None ? (_flags & FlagPf) != 0 : (BitOperations.PopCount(_fRes & 0xFF) & 1) == 0;

    /// <summary>Evaluates a condition code (SDM Vol. 1 Appendix B), encoded as the low 4 bits of Jcc/SETcc/CMOVcc.</summary>
    internal bool Condition(int cc)
    {
        // Fast forms for the common CMP/SUB and TEST/logic producers: compare the recorded operands directly.
        if (_flagOp == FlagOp.Sub)
        {
            ulong m = SizeMask(_fSize);
            ulong a = _fA & m, b = _fB & m;
            switch (cc)
            {
                case 2: return a < b;
                case 3: return a >= b;
                case 4: return a == b;
                case 5: return a != b;
                case 6: return a <= b;
                case 7: return a > b;
                case 12: return SignExtend(a, _fSize) < SignExtend(b, _fSize);
                case 13: return SignExtend(a, _fSize) >= SignExtend(b, _fSize);
                case 14: return SignExtend(a, _fSize) <= SignExtend(b, _fSize);
                case 15: return SignExtend(a, _fSize) > SignExtend(b, _fSize);
            }
        }
        else if (_flagOp == FlagOp.Logic)
        {
            ulong res = _fRes & SizeMask(_fSize);
            bool sf = (res & SignBit(_fSize)) != 0;
            switch (cc)
            {
                case 2: return false;
                case 3: return true;
                case 4: return res == 0;
                case 5: return res != 0;
                case 6: return res == 0;
                case 7: return res != 0;
                case 8: return sf;
                case 9: return !sf;
                case 12: return sf;
                case 13: return !sf;
                case 14: return res == 0 || sf;
                case 15: return res != 0 && !sf;
            }
        }

        bool r;
        switch (cc >> 1)
        {
            case 0: r = GetOf(); break;
            case 1: r = GetCf(); break;
            case 2: r = GetZf(); break;
            case 3: r = GetCf() || GetZf(); break;
            case 4: r = GetSf(); break;
            case 5: r = GetPf(); break;
            case 6: r = GetSf() != GetOf(); break;
            default: r = GetZf() || (GetSf() != GetOf()); break;
        }

        return (cc & 1) != 0 ? !r : r;
    }

    /// <summary>Sets or clears one flag after materialising the lazy state.</summary>
    private void PutFlag(ulong flag, bool value)
    {
        ulong f = MaterializeFlags();
        _flags = value ? f | flag : f & ~flag;
    }
}
