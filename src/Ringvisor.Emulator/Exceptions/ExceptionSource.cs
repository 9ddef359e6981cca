// Where an event being delivered through the IDT came from; decides the saved RIP, the DPL check and the EXT bit.
namespace Ringvisor.Emulator.Exceptions;

public enum ExceptionSource
{
    /// <summary>A fault or abort raised by an instruction: the saved RIP is the faulting instruction.</summary>
    Fault,

    /// <summary>INT n: saved RIP is the next instruction, gate DPL is checked.</summary>
    SoftwareInterrupt,

    /// <summary>INT3 / INTO: like INT n (DPL checked, next RIP).</summary>
    SoftwareException,

    /// <summary>INT1 (ICEBP): next RIP, no DPL check.</summary>
    PrivilegedSoftware,

    /// <summary>A maskable interrupt from the local APIC / PIC (EXT bit set in error codes).</summary>
    External,

    /// <summary>Non-maskable interrupt.</summary>
    Nmi,
}
