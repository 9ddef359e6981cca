using Iced.Intel;

namespace Ringvisor.Emulator.Fpu;

/// <summary>
/// What <see cref="SimdExecutor"/> needs from the interpreter core: operand addresses, memory, general registers,
/// flags and the control-register bits that gate x87/SSE (Intel SDM Vol. 3A 2.5, 13.1). Implementations should not
/// allocate: the executor passes stack buffers.
/// </summary>
public interface ISimdOperandAccess
{
    /// <summary>
    /// The linear address (segment base included, address-size wrap applied) of the instruction's memory operand:
    /// <see cref="OpKind.Memory"/>, or the implicit DS:rDI of MASKMOVQ/MASKMOVDQU (<see cref="OpKind.MemorySegDI"/>,
    /// <see cref="OpKind.MemorySegEDI"/>, <see cref="OpKind.MemorySegRDI"/>).
    /// </summary>
    ulong GetMemoryAddress(in Instruction instruction);

    /// <summary>Reads <paramref name="destination"/>.Length bytes at a linear address with the current CPL's
    /// permissions. False if the access faulted (the core has already raised #PF/#GP/#SS).</summary>
    bool ReadMemory(ulong linearAddress, Span<byte> destination);

    /// <summary>Writes <paramref name="source"/> at a linear address. False if the access faulted (exception already
    /// raised). The access must be all-or-nothing: no byte is written when any part faults.</summary>
    bool WriteMemory(ulong linearAddress, ReadOnlySpan<byte> source);

    /// <summary>Reads a general-purpose register of any width (AL, AX, EAX, RAX, R8D ...), zero-extended.</summary>
    ulong ReadGpr(Register register);

    /// <summary>Writes a general-purpose register with x86 rules: 32-bit writes zero the upper half in 64-bit mode,
    /// 8/16-bit writes merge.</summary>
    void WriteGpr(Register register, ulong value);

    /// <summary>The selector of a segment register (for FIP/FCS, FDP/FDS in FSTENV/FSAVE/FXSAVE).</summary>
    ushort ReadSegmentSelector(Register segment);

    /// <summary>Current RFLAGS (FCMOVcc reads CF/ZF/PF; FSTENV's real-mode layout needs VM).</summary>
    ulong Rflags { get; }

    /// <summary>Replaces the RFLAGS bits selected by <paramref name="mask"/> with those of <paramref name="value"/>
    /// (COMISS/UCOMISS/FCOMI set ZF, PF, CF and clear OF, SF, AF).</summary>
    void SetFlags(ulong mask, ulong value);

    /// <summary>CR0: PE, MP, EM, TS, NE are consulted.</summary>
    ulong Cr0 { get; }

    /// <summary>CR4: OSFXSR and OSXMMEXCPT are consulted.</summary>
    ulong Cr4 { get; }

    /// <summary>Current privilege level (0-3).</summary>
    int Cpl { get; }

    /// <summary>True in 64-bit mode (IA-32e with CS.L = 1): FXSAVE64 and 64-bit FIP/FDP are only possible there.</summary>
    bool Is64BitMode { get; }
}
