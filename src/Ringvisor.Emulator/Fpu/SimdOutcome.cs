namespace Ringvisor.Emulator.Fpu;

/// <summary>
/// What <see cref="SimdExecutor.Execute"/> asks the interpreter core to do after an x87/MMX/SSE instruction.
/// Faults are values (design principle 3): the core turns them into the matching guest exception.
/// </summary>
public enum SimdOutcome
{
    /// <summary>The instruction completed; the core advances RIP.</summary>
    Ok,

    /// <summary>#UD (vector 6): CR0.EM with SSE/MMX, CR4.OSFXSR = 0 with SSE, unimplemented form, or a #XM
    /// condition while CR4.OSXMMEXCPT = 0 (Intel SDM Vol. 3A 2.5: SIMD FP exceptions are then reported as #UD).</summary>
    InvalidOpcode,

    /// <summary>#NM (vector 7): CR0.TS (or CR0.EM for x87, or TS with MP for WAIT).</summary>
    DeviceNotAvailable,

    /// <summary>#MF (vector 16): an unmasked x87 exception was pending (FSW.ES) at a waiting x87/MMX instruction.
    /// Returned regardless of CR0.NE: the IRQ13/FERR# path is not modelled.</summary>
    FloatingPointError,

    /// <summary>#XM (vector 19): an unmasked SIMD floating-point exception; MXCSR flags are already set and the
    /// destination is unchanged. Only returned when CR4.OSXMMEXCPT = 1 (otherwise <see cref="InvalidOpcode"/>).</summary>
    SimdFloatingPointException,

    /// <summary>A memory access faulted; the core already raised the exception (#PF, #GP, #SS ...), so it must not
    /// advance RIP. Architectural state may have been partly updated only where the CPU also does so.</summary>
    MemoryFaulted,

    /// <summary>#GP(0) (vector 13): misaligned 16-byte operand of an aligned SSE form or FXSAVE/FXRSTOR area,
    /// reserved MXCSR bits set by LDMXCSR/FXRSTOR.</summary>
    GeneralProtection,
}
