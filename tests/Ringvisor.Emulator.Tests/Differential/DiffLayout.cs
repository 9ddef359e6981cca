// The guest-physical (= linear, identity-mapped) layout shared by both sides of the differential harness, and the
// exit ports. Everything the case code touches is a user page; the GDT/TSS/IDT, the exception stubs and their stack
// are supervisor pages.
namespace Ringvisor.Emulator.Tests.Differential;

internal static class DiffLayout
{
    public const ulong MemorySize = 4UL << 20;

    public const ulong Pml4 = 0x1000;
    public const ulong Pdpt = 0x2000;
    public const ulong Pd = 0x3000;
    public const ulong Pt = 0x4000;
    public const ulong Gdt = 0x5000;
    public const ulong Tss = 0x6000;

    /// <summary>TSS limit covering a full, all-zero I/O permission bitmap plus the trailing 0xFF byte (SDM Vol. 1 §19.5.2).</summary>
    public const uint TssLimit = 0x68 + 0x2000;
    public const ulong Idt = 0x9000;
    public const ulong Handlers = 0xA000;
    public const int HandlerStride = 32;
    public const ulong KernelStackTop = 0xC000;

    /// <summary>Where each case's code is written (prologue, body, epilogue).</summary>
    public const ulong CodeBase = 0x10000;
    public const int CodeMax = 0x10000;

    /// <summary>fxsave64 [FxOut]; out DumpPort, al — where the exception stubs return to so the FPU state is dumped.</summary>
    public const ulong DumpStub = 0x20000;

    public const ulong Stack = 0x30000;
    public const int StackSize = 0x2000;
    public const ulong StackTop = 0x31000;

    /// <summary>The data pages compared after every case.</summary>
    public const ulong Data = 0x40000;
    public const int DataSize = 0x4000;

    /// <summary>A user page mapped read-only (writes fault), one not present, one supervisor-only.</summary>
    public const ulong ReadOnlyPage = 0x44000;
    public const ulong NotPresentPage = 0x45000;
    public const ulong SupervisorPage = 0x46000;

    /// <summary>The FXSAVE image the prologue loads (x87, MXCSR, XMM0-15) and the one the epilogue stores.</summary>
    public const ulong FxIn = 0x50000;
    public const ulong FxOut = 0x50200;

    public const ushort KernelCs = 0x08, KernelDs = 0x10, UserDs = 0x18 | 3, UserCs = 0x20 | 3, TssSel = 0x28;

    /// <summary>Port base of the exception stubs: vector v (0-31) writes port ExceptionPortBase + v.</summary>
    public const byte ExceptionPortBase = 0xC0;

    /// <summary>Vectors 32-255 (software INT n only) share this port.</summary>
    public const byte OtherVectorPort = 0xE0;

    /// <summary>The normal end of a case.</summary>
    public const byte DonePort = 0xF0;

    /// <summary>The end of the dump stub after an exception.</summary>
    public const byte DumpPort = 0xF1;

    public const byte FirstPort = 0xC0;
    public const int PortCount = 0x40;

    /// <summary>
    /// RFLAGS every case starts from: bit 1 only. IF = 0 (no interrupts). IOPL = 0: this host's KVM (no VT-x, guest
    /// CPL 3 runs natively) does not give the guest IOPL 3 (KVM_GET_REGS reads it back as 0), so CPL-3 OUTs rely on
    /// the TSS I/O permission bitmap, which allows every port.
    /// </summary>
    public const ulong BaseRflags = 0x2;
}
