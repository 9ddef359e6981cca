using Iced.Intel;
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Fpu;

namespace Ringvisor.Emulator.Tests.Fpu;

/// <summary>A flat 64 KiB memory, a GPR file and control registers for driving <see cref="SimdExecutor"/>.
/// Accesses past <see cref="FaultAbove"/> fail, as if the core had raised #PF.</summary>
internal sealed class FakeSimdAccess : ISimdOperandAccess
{
    public readonly byte[] Memory = new byte[0x10000];
    public readonly Dictionary<Register, ulong> Gprs = [];
    public ulong FaultAbove = 0x10000;
    public int Reads;
    public int Writes;

    public ulong Rflags { get; set; } = 0x2;

    public ulong Cr0 { get; set; } = SystemRegisters.Cr0Pe | SystemRegisters.Cr0Mp | SystemRegisters.Cr0Ne;

    public ulong Cr4 { get; set; } = SystemRegisters.Cr4Osfxsr | SystemRegisters.Cr4Osxmmexcpt;

    public int Cpl { get; set; } = 3;

    public bool Is64BitMode { get; set; } = true;

    public ulong GetMemoryAddress(in Instruction instruction)
    {
        for (var op = 0; op < instruction.OpCount; op++)
        {
            switch (instruction.GetOpKind(op))
            {
                case OpKind.MemorySegRDI:
                case OpKind.MemorySegEDI:
                case OpKind.MemorySegDI:
                    return ReadGpr(Register.RDI);
            }
        }

        var address = instruction.MemoryDisplacement64;
        if (instruction.MemoryBase != Register.None && instruction.MemoryBase != Register.RIP)
        {
            address += ReadGpr(instruction.MemoryBase);
        }

        if (instruction.MemoryIndex != Register.None)
        {
            address += ReadGpr(instruction.MemoryIndex) * (ulong)instruction.MemoryIndexScale;
        }

        return address;
    }

    public bool ReadMemory(ulong linearAddress, Span<byte> destination)
    {
        Reads++;
        if (!InRange(linearAddress, destination.Length))
        {
            return false;
        }

        Memory.AsSpan((int)linearAddress, destination.Length).CopyTo(destination);
        return true;
    }

    public bool WriteMemory(ulong linearAddress, ReadOnlySpan<byte> source)
    {
        Writes++;
        if (!InRange(linearAddress, source.Length))
        {
            return false;
        }

        source.CopyTo(Memory.AsSpan((int)linearAddress));
        return true;
    }

    private bool InRange(ulong address, int length) =>
        address < FaultAbove && FaultAbove - address >= (ulong)length;

    public ulong ReadGpr(Register register)
    {
        var full = register.GetFullRegister();
        Gprs.TryGetValue(full, out var v);
        return register.GetSize() switch
        {
            1 => v & 0xFF,
            2 => v & 0xFFFF,
            4 => v & 0xFFFF_FFFF,
            _ => v,
        };
    }

    public void WriteGpr(Register register, ulong value)
    {
        var full = register.GetFullRegister();
        Gprs.TryGetValue(full, out var old);
        Gprs[full] = register.GetSize() switch
        {
            1 => (old & ~0xFFUL) | (value & 0xFF),
            2 => (old & ~0xFFFFUL) | (value & 0xFFFF),
            4 => value & 0xFFFF_FFFF,
            _ => value,
        };
    }

    public ushort ReadSegmentSelector(Register segment) => segment == Register.CS ? (ushort)0x33 : (ushort)0x2B;

    public void SetFlags(ulong mask, ulong value) => Rflags = (Rflags & ~mask) | (value & mask);

    public void WriteBytes(ulong address, ReadOnlySpan<byte> bytes) => bytes.CopyTo(Memory.AsSpan((int)address));

    public ulong ReadUInt64(ulong address) => BitConverter.ToUInt64(Memory, (int)address);
}
