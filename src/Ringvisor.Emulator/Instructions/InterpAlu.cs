// Integer arithmetic and logic (SDM Vol. 2: ADD, ADC, SUB, SBB, CMP, AND, OR, XOR, TEST, INC, DEC, NEG, NOT, XADD,
// CMPXCHG, CMPXCHG8B, CMPXCHG16B, XCHG) with LOCK atomicity (Vol. 3A §8.1.2): a host compare-and-swap loop on the RAM mapping
// when the operand is naturally aligned, otherwise a global fallback lock.
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Iced.Intel;
using Ringvisor.Emulator.Memory;

namespace Ringvisor.Emulator.Instructions;

public sealed unsafe partial class Cpu
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong AluCompute(AluOp op, ulong a, ulong b, bool cf) => op switch
    {
        AluOp.Add => a + b,
        AluOp.Or => a | b,
        AluOp.Adc => a + b + (cf ? 1UL : 0),
        AluOp.Sbb => a - b - (cf ? 1UL : 0),
        AluOp.And => a & b,
        AluOp.Sub or AluOp.Cmp => a - b,
        AluOp.Xor => a ^ b,
        AluOp.Inc => a + 1,
        AluOp.Dec => a - 1,
        AluOp.Neg => 0 - a,
        AluOp.Not => ~a,
        AluOp.Xchg => b,
        AluOp.Xadd => a + b,
        AluOp.Bts => a | b,
        AluOp.Btr => a & ~b,
        AluOp.Btc => a ^ b,
        _ => a,
    };

    private void AluFlags(AluOp op, ulong a, ulong b, ulong res, int size, bool cf)
    {
        switch (op)
        {
            case AluOp.Add:
            case AluOp.Xadd:
                SetLazy(FlagOp.Add, a, b, res, size);
                break;
            case AluOp.Adc:
                _fCarryIn = cf;
                SetLazy(FlagOp.Adc, a, b, res, size);
                break;
            case AluOp.Sub:
            case AluOp.Cmp:
                SetLazy(FlagOp.Sub, a, b, res, size);
                break;
            case AluOp.Sbb:
                _fCarryIn = cf;
                SetLazy(FlagOp.Sbb, a, b, res, size);
                break;
            case AluOp.And:
            case AluOp.Or:
            case AluOp.Xor:
                SetLazy(FlagOp.Logic, a, b, res, size);
                break;
            case AluOp.Inc:
                _fCarryIn = cf;
                SetLazy(FlagOp.Inc, a, 1, res, size);
                break;
            case AluOp.Dec:
                _fCarryIn = cf;
                SetLazy(FlagOp.Dec, a, 1, res, size);
                break;
            case AluOp.Neg:
                SetLazy(FlagOp.Neg, 0, a, res, size);
                break;
        }
    }

    private static bool NeedsCarryIn(AluOp op) => op is AluOp.Adc or AluOp.Sbb or AluOp.Inc or AluOp.Dec;

    /// <summary>Generic two-operand (or one-operand) ALU instruction: op0 = op0 (op) op1.</summary>
    private void ExecAlu(in Instruction ins, AluOp op)
    {
        int size = OpSize(ins);
        ulong b = 0;
        if (ins.OpCount > 1 && !ReadOp(ins, 1, size, out b))
        {
            return;
        }

        bool cf = NeedsCarryIn(op) && GetCf();
        if (ins.GetOpKind(0) == OpKind.Register)
        {
            var r = ins.Op0Register;
            ulong a = ReadReg(r);
            ulong res = AluCompute(op, a, b, cf) & SizeMask(size);
            if (op != AluOp.Cmp)
            {
                WriteReg(r, res);
            }

            AluFlags(op, a, b, res, size, cf);
            return;
        }

        ulong la = MemoryLinear(ins);
        if (op == AluOp.Cmp)
        {
            if (ReadMem(la, size, out ulong a))
            {
                AluFlags(op, a, b, (a - b) & SizeMask(size), size, cf);
            }

            return;
        }

        if (ins.HasLockPrefix)
        {
            if (AtomicRmw(la, size, op, b, cf, out ulong old, out ulong nres))
            {
                AluFlags(op, old, b, nres, size, cf);
            }

            return;
        }

        if (!ReadMem(la, size, out ulong av))
        {
            return;
        }

        ulong r2 = AluCompute(op, av, b, cf) & SizeMask(size);
        if (WriteMem(la, size, r2))
        {
            AluFlags(op, av, b, r2, size, cf);
        }
    }

    private void ExecTest(in Instruction ins)
    {
        int size = OpSize(ins);
        if (!ReadOp(ins, 0, size, out ulong a) || !ReadOp(ins, 1, size, out ulong b))
        {
            return;
        }

        SetLazy(FlagOp.Logic, a, b, a & b, size);
    }

    private void ExecNot(in Instruction ins)
    {
        int size = OpSize(ins);
        if (ins.GetOpKind(0) == OpKind.Register)
        {
            WriteReg(ins.Op0Register, ~ReadReg(ins.Op0Register));
            return;
        }

        ulong la = MemoryLinear(ins);
        if (ins.HasLockPrefix)
        {
            _ = AtomicRmw(la, size, AluOp.Not, 0, false, out _, out _);
            return;
        }

        if (ReadMem(la, size, out ulong v))
        {
            _ = WriteMem(la, size, ~v);
        }
    }

    /// <summary>
    /// Atomic read-modify-write at a linear address. Returns the old and new values (masked to the size).
    /// </summary>
    internal bool AtomicRmw(ulong la, int size, AluOp op, ulong b, bool cf, out ulong old, out ulong res)
    {
        old = 0;
        res = 0;
        ulong mask = SizeMask(size);
        var access = _mmu.TryGetAtomic(la, size, out nint host);
        if (access == AtomicAccess.Fault)
        {
            return MmuFault();
        }

        if (access == AtomicAccess.Direct)
        {
            byte* p = (byte*)host;
            // SAFETY: the MMU returns Direct only for a naturally aligned operand inside a RAM page that holds no
            // decoded code, with write access checked, as Interlocked requires.
            while (true)
            {
                switch (size)
                {
                    case 1:
                        {
                            byte o = Volatile.Read(ref *p);
                            byte n = (byte)AluCompute(op, o, b, cf);
                            if (Interlocked.CompareExchange(ref *p, n, o) == o)
                            {
                                old = o;
                                res = n;
                                return true;
                            }

                            break;
                        }

                    case 2:
                        {
                            ref ushort r = ref Unsafe.AsRef<ushort>(p);
                            ushort o = Volatile.Read(ref r);
                            ushort n = (ushort)AluCompute(op, o, b, cf);
                            if (Interlocked.CompareExchange(ref r, n, o) == o)
                            {
                                old = o;
                                res = n;
                                return true;
                            }

                            break;
                        }

                    case 4:
                        {
                            ref uint r = ref Unsafe.AsRef<uint>(p);
                            uint o = Volatile.Read(ref r);
                            uint n = (uint)AluCompute(op, o, b, cf);
                            if (Interlocked.CompareExchange(ref r, n, o) == o)
                            {
                                old = o;
                                res = n;
                                return true;
                            }

                            break;
                        }

                    default:
                        {
                            ref ulong r = ref Unsafe.AsRef<ulong>(p);
                            ulong o = Volatile.Read(ref r);
                            ulong n = AluCompute(op, o, b, cf);
                            if (Interlocked.CompareExchange(ref r, n, o) == o)
                            {
                                old = o;
                                res = n;
                                return true;
                            }

                            break;
                        }
                }
            }
        }

        // Misaligned, page-split, MMIO or a code page: an ordinary read and write under the VM-wide lock.
        lock (_host.MemorySystem.AtomicFallbackLock)
        {
            if (!ReadMem(la, size, out old))
            {
                return false;
            }

            res = AluCompute(op, old, b, cf) & mask;
            return WriteMem(la, size, res);
        }
    }

    /// <summary>Atomic compare-and-exchange of 1..8 bytes; returns the value seen in memory.</summary>
    private bool AtomicCompareExchange(ulong la, int size, ulong expected, ulong desired, out ulong seen)
    {
        seen = 0;
        var access = _mmu.TryGetAtomic(la, size, out nint host);
        if (access == AtomicAccess.Fault)
        {
            return MmuFault();
        }

        if (access == AtomicAccess.Direct)
        {
            byte* p = (byte*)host;
            // SAFETY: Direct means a naturally aligned operand inside a RAM page without decoded code (TryGetAtomic).
            seen = size switch
            {
                1 => Interlocked.CompareExchange(ref *p, (byte)desired, (byte)expected),
                2 => Interlocked.CompareExchange(ref Unsafe.AsRef<ushort>(p), (ushort)desired, (ushort)expected),
                4 => Interlocked.CompareExchange(ref Unsafe.AsRef<uint>(p), (uint)desired, (uint)expected),
                _ => Interlocked.CompareExchange(ref Unsafe.AsRef<ulong>(p), desired, expected),
            };
            return true;
        }

        lock (_host.MemorySystem.AtomicFallbackLock)
        {
            if (!ReadMem(la, size, out seen))
            {
                return false;
            }

            // The processor writes back the old value on failure (SDM CMPXCHG); for RAM the store is invisible.
            return WriteMem(la, size, seen == expected ? desired : seen);
        }
    }

    private void ExecXadd(in Instruction ins)
    {
        int size = OpSize(ins);
        var src = ins.Op1Register;
        ulong b = ReadReg(src);
        if (ins.GetOpKind(0) == OpKind.Register)
        {
            ulong a = ReadReg(ins.Op0Register);
            ulong res = (a + b) & SizeMask(size);
            WriteReg(src, a);
            WriteReg(ins.Op0Register, res);
            SetLazy(FlagOp.Add, a, b, res, size);
            return;
        }

        if (AtomicRmw(MemoryLinear(ins), size, AluOp.Xadd, b, false, out ulong old, out ulong nres))
        {
            WriteReg(src, old);
            SetLazy(FlagOp.Add, old, b, nres & SizeMask(size), size);
        }
    }

    private void ExecXchg(in Instruction ins)
    {
        int size = OpSize(ins);
        if (ins.GetOpKind(0) == OpKind.Register && ins.GetOpKind(1) == OpKind.Register)
        {
            ulong a = ReadReg(ins.Op0Register);
            ulong b = ReadReg(ins.Op1Register);
            WriteReg(ins.Op0Register, b);
            WriteReg(ins.Op1Register, a);
            return;
        }

        // XCHG with memory is implicitly locked (SDM Vol. 3A §8.1.2.1).
        var reg = ins.GetOpKind(0) == OpKind.Register ? ins.Op0Register : ins.Op1Register;
        if (AtomicRmw(MemoryLinear(ins), size, AluOp.Xchg, ReadReg(reg), false, out ulong old, out _))
        {
            WriteReg(reg, old);
        }
    }

    private void ExecCmpxchg(in Instruction ins)
    {
        int size = OpSize(ins);
        var acc = size switch { 1 => Register.AL, 2 => Register.AX, 4 => Register.EAX, _ => Register.RAX };
        ulong expected = ReadReg(acc);
        ulong desired = ReadReg(ins.Op1Register);
        ulong seen;
        if (ins.GetOpKind(0) == OpKind.Register)
        {
            seen = ReadReg(ins.Op0Register);
            if (seen == expected)
            {
                WriteReg(ins.Op0Register, desired);
            }
        }
        else if (!AtomicCompareExchange(MemoryLinear(ins), size, expected, desired, out seen))
        {
            return;
        }

        SetLazy(FlagOp.Sub, expected, seen, (expected - seen) & SizeMask(size), size);
        if (seen != expected)
        {
            // The accumulator is written only on failure (a 32-bit write zero-extends RAX then).
            WriteReg(acc, seen);
        }
    }

    /// <summary>
    /// CMPXCHG16B m128 (SDM Vol. 2A CMPXCHG8B/CMPXCHG16B; 64-bit mode, REX.W): compares RDX:RAX with the 16-byte operand;
    /// equal: ZF = 1 and RCX:RBX is stored; else ZF = 0 and the operand is loaded into RDX:RAX. The operand must be
    /// 16-byte aligned (#GP(0) otherwise, whatever AC says) and receives a write cycle either way, so a read-only page
    /// faults even when the comparison fails. No host instruction does a 16-byte compare-exchange from .NET: the access
    /// runs under the VM's lock for atomics that have no direct host form (as split locked accesses do). Other flags
    /// are unchanged.
    /// </summary>
    private void ExecCmpxchg16b(in Instruction ins)
    {
        ulong la = MemoryLinear(ins);
        if ((la & 0xF) != 0)
        {
            _ = Gp();
            return;
        }

        Span<byte> m = stackalloc byte[16];
        bool equal;
        lock (_host.MemorySystem.AtomicFallbackLock)
        {
            if (!ReadData(la, m))
            {
                return;
            }

            ulong lo = BinaryPrimitives.ReadUInt64LittleEndian(m);
            ulong hi = BinaryPrimitives.ReadUInt64LittleEndian(m[8..]);
            equal = lo == Gpr[0] && hi == Gpr[2];
            if (equal)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(m, Gpr[3]);
                BinaryPrimitives.WriteUInt64LittleEndian(m[8..], Gpr[1]);
            }

            // On failure the old value is written back (the write cycle the SDM describes).
            if (!WriteData(la, m))
            {
                return;
            }

            if (!equal)
            {
                Gpr[0] = lo;
                Gpr[2] = hi;
            }
        }

        SetZfOnly(equal);
    }

    /// <summary>CMPXCHG8B/16B: ZF tells whether the operands were equal; the other flags are unchanged.</summary>
    private void SetZfOnly(bool zf)
    {
        ulong f = MaterializeFlags();
        _flags = zf ? f | FlagZf : f & ~FlagZf;
    }

    private void ExecCmpxchg8b(in Instruction ins)
    {
        ulong expected = ((Gpr[2] & 0xFFFF_FFFF) << 32) | (Gpr[0] & 0xFFFF_FFFF);
        ulong desired = ((Gpr[1] & 0xFFFF_FFFF) << 32) | (Gpr[3] & 0xFFFF_FFFF);
        if (!AtomicCompareExchange(MemoryLinear(ins), 8, expected, desired, out ulong seen))
        {
            return;
        }

        SetZfOnly(seen == expected);
        if (seen != expected)
        {
            Gpr[0] = (uint)seen;
            Gpr[2] = seen >> 32;
        }
    }
}
