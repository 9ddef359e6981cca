namespace Ringvisor.Core.Cpu;

/// <summary>General-purpose registers, RIP and RFLAGS (the shape of kvm_regs).</summary>
public struct CpuRegisters
{
    public ulong Rax, Rbx, Rcx, Rdx, Rsi, Rdi, Rsp, Rbp;
    public ulong R8, R9, R10, R11, R12, R13, R14, R15;
    public ulong Rip, Rflags;

    /// <summary>RFLAGS bit 1 is reserved and always reads as 1.</summary>
    public const ulong RflagsReserved = 0x2;
}
