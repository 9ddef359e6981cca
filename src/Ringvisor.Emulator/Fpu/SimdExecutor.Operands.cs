using System.Runtime.Intrinsics;
using Iced.Intel;

namespace Ringvisor.Emulator.Fpu;

/// <summary>Operand fetch and store for vector instructions: XMM, MMX, GPR and memory operands, with the legacy-SSE
/// 16-byte alignment rule (SDM Vol. 1 11.6.8 / Vol. 2 "#GP(0) if a memory operand is not aligned on a 16-byte
/// boundary").</summary>
public static partial class SimdExecutor
{
    /// <summary>16-byte memory forms that do not require alignment (SDM Vol. 2: MOVUPS/MOVUPD/MOVDQU/LDDQU).</summary>
    private static bool AllowsUnaligned(Mnemonic m) => m is Mnemonic.Movups or Mnemonic.Movupd or Mnemonic.Movdqu
        or Mnemonic.Lddqu or Mnemonic.Maskmovdqu;

    private static bool IsMmx(in Instruction i) => i.Op0Kind == OpKind.Register && i.Op0Register.IsMM();

    private static bool UsesMmRegister(in Instruction i)
    {
        for (var op = 0; op < i.OpCount; op++)
        {
            if (i.GetOpKind(op) == OpKind.Register && i.GetOpRegister(op).IsMM())
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Reads operand <paramref name="op"/>: XMM (128 bits), MM or GPR (zero-extended into the low lane),
    /// or memory of the instruction's memory size (zero-extended).</summary>
    private static SimdOutcome Load(in Instruction i, int op, FpuState s, ISimdOperandAccess a,
        out Vector128<byte> value)
    {
        switch (i.GetOpKind(op))
        {
            case OpKind.Register:
                var reg = i.GetOpRegister(op);
                if (reg.IsXMM())
                {
                    value = s.Xmm[reg - Register.XMM0];
                }
                else if (reg.IsMM())
                {
                    value = Vector128.CreateScalar(s.GetMm(reg - Register.MM0)).AsByte();
                }
                else
                {
                    value = Vector128.CreateScalar(a.ReadGpr(reg)).AsByte();
                }

                return SimdOutcome.Ok;
            case OpKind.Memory:
                return LoadMemory(in i, a, i.MemorySize.GetSize(), out value);
            case OpKind.Immediate8:
                value = Vector128.CreateScalar(i.Immediate8);
                return SimdOutcome.Ok;
            default:
                value = default;
                return SimdOutcome.InvalidOpcode;
        }
    }

    private static SimdOutcome LoadMemory(in Instruction i, ISimdOperandAccess a, int size, out Vector128<byte> value)
    {
        value = default;
        if (size is <= 0 or > 16)
        {
            return SimdOutcome.InvalidOpcode;
        }

        var address = a.GetMemoryAddress(in i);
        if (size == 16 && (address & 15) != 0 && !AllowsUnaligned(i.Mnemonic))
        {
            return SimdOutcome.GeneralProtection;
        }

        Span<byte> buffer = stackalloc byte[16];
        buffer.Clear();
        if (!a.ReadMemory(address, buffer[..size]))
        {
            return SimdOutcome.MemoryFaulted;
        }

        value = Vector128.Create((ReadOnlySpan<byte>)buffer);
        return SimdOutcome.Ok;
    }

    /// <summary>Writes operand <paramref name="op"/>: a whole XMM, an MM (low 64 bits), a GPR (low 64 bits, x86
    /// width rules) or <paramref name="memorySize"/> bytes of memory (0 = the instruction's memory size).</summary>
    private static SimdOutcome Store(in Instruction i, int op, FpuState s, ISimdOperandAccess a,
        Vector128<byte> value, int memorySize = 0)
    {
        switch (i.GetOpKind(op))
        {
            case OpKind.Register:
                var reg = i.GetOpRegister(op);
                if (reg.IsXMM())
                {
                    s.Xmm[reg - Register.XMM0] = value;
                }
                else if (reg.IsMM())
                {
                    s.SetMm(reg - Register.MM0, value.AsUInt64().ToScalar());
                }
                else
                {
                    a.WriteGpr(reg, value.AsUInt64().ToScalar());
                }

                return SimdOutcome.Ok;
            case OpKind.Memory:
            case OpKind.MemorySegDI:
            case OpKind.MemorySegEDI:
            case OpKind.MemorySegRDI:
                var size = memorySize != 0 ? memorySize : i.MemorySize.GetSize();
                if (size is <= 0 or > 16)
                {
                    return SimdOutcome.InvalidOpcode;
                }

                var address = a.GetMemoryAddress(in i);
                if (size == 16 && (address & 15) != 0 && !AllowsUnaligned(i.Mnemonic))
                {
                    return SimdOutcome.GeneralProtection;
                }

                Span<byte> buffer = stackalloc byte[16];
                value.CopyTo(buffer);
                return a.WriteMemory(address, buffer[..size]) ? SimdOutcome.Ok : SimdOutcome.MemoryFaulted;
            default:
                return SimdOutcome.InvalidOpcode;
        }
    }

    /// <summary>Loads op0 and op1 of a two-operand form.</summary>
    private static SimdOutcome LoadPair(in Instruction i, FpuState s, ISimdOperandAccess a,
        out Vector128<byte> dst, out Vector128<byte> src)
    {
        src = default;
        var r = Load(in i, 0, s, a, out dst);
        return r != SimdOutcome.Ok ? r : Load(in i, 1, s, a, out src);
    }
}
