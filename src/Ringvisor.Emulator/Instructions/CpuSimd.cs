// Routing of x87/MMX/SSE instructions to the SIMD executor (Fpu/SimdExecutor) and the operand access it needs.
using Iced.Intel;
using Ringvisor.Emulator.Exceptions;
using Ringvisor.Emulator.Fpu;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu : ISimdOperandAccess
{
    internal readonly FpuState FpuRegs = new();

    private void ExecSimd(in Instruction ins)
    {
        if (!SimdExecutor.Handles(ins.Code))
        {
            Undefined(ins);
            return;
        }

        switch (SimdExecutor.Execute(ins, FpuRegs, this))
        {
            case SimdOutcome.Ok:
            case SimdOutcome.MemoryFaulted:
                break;
            case SimdOutcome.InvalidOpcode:
                _ = Ud();
                break;
            case SimdOutcome.DeviceNotAvailable:
                _ = Fault(ExceptionVector.DeviceNotAvailable);
                break;
            case SimdOutcome.FloatingPointError:
                _ = Fault(ExceptionVector.FpuError);
                break;
            case SimdOutcome.SimdFloatingPointException:
                _ = Fault(ExceptionVector.SimdError);
                break;
            default:
                _ = Gp(0);
                break;
        }
    }

    ulong ISimdOperandAccess.GetMemoryAddress(in Instruction instruction)
    {
        for (int i = 0; i < instruction.OpCount; i++)
        {
            var k = instruction.GetOpKind(i);
            if (k is OpKind.MemorySegDI or OpKind.MemorySegEDI or OpKind.MemorySegRDI)
            {
                int asz = StringAddrSize(k);
                return Linear(instruction.MemorySegment - Register.ES, Gpr[7] & SizeMask(asz));
            }
        }

        return MemoryLinear(instruction);
    }

    bool ISimdOperandAccess.ReadMemory(ulong linearAddress, Span<byte> destination) => ReadData(linearAddress, destination);

    bool ISimdOperandAccess.WriteMemory(ulong linearAddress, ReadOnlySpan<byte> source) => WriteData(linearAddress, source);

    ulong ISimdOperandAccess.ReadGpr(Register register) => ReadReg(register);

    void ISimdOperandAccess.WriteGpr(Register register, ulong value) => WriteReg(register, value);

    ushort ISimdOperandAccess.ReadSegmentSelector(Register segment) => Seg[segment - Register.ES].Selector;

    ulong ISimdOperandAccess.Rflags => GetRflags();

    void ISimdOperandAccess.SetFlags(ulong mask, ulong value)
    {
        ulong f = MaterializeFlags();
        _flags = (f & ~mask) | (value & mask) | 2;
    }

    ulong ISimdOperandAccess.Cr0 => Cr0;

    ulong ISimdOperandAccess.Cr4 => Cr4;

    int ISimdOperandAccess.Cpl => _cpl;

    bool ISimdOperandAccess.Is64BitMode => _bitness == 64;
}
