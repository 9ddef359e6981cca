namespace Ringvisor.Core.Cpu;

/// <summary>Segment, control and descriptor-table registers (the shape of kvm_sregs).</summary>
public struct SystemRegisters
{
    public SegmentRegister Cs, Ds, Es, Fs, Gs, Ss, Tr, Ldt;
    public DescriptorTable Gdt, Idt;
    public ulong Cr0, Cr2, Cr3, Cr4, Cr8, Efer, ApicBase;

    public const ulong Cr0Pe = 1UL << 0;
    public const ulong Cr0Mp = 1UL << 1;
    public const ulong Cr0Et = 1UL << 4;
    public const ulong Cr0Ne = 1UL << 5;
    public const ulong Cr0Wp = 1UL << 16;
    public const ulong Cr0Pg = 1UL << 31;
    public const ulong Cr4Pse = 1UL << 4;
    public const ulong Cr4Pae = 1UL << 5;
    public const ulong Cr4Pge = 1UL << 7;
    public const ulong Cr4Osfxsr = 1UL << 9;
    public const ulong Cr4Osxmmexcpt = 1UL << 10;
    public const ulong EferSce = 1UL << 0;
    public const ulong EferLme = 1UL << 8;
    public const ulong EferLma = 1UL << 10;
    public const ulong EferNxe = 1UL << 11;

    /// <summary>The architectural reset state (Intel SDM Vol. 3A Table 9-1): real mode at F000:FFF0.</summary>
    public static SystemRegisters Reset()
    {
        var s = new SystemRegisters
        {
            Cs = SegmentRegister.RealMode(0xF000, code: true),
            Ds = SegmentRegister.RealMode(0, code: false),
            Es = SegmentRegister.RealMode(0, code: false),
            Fs = SegmentRegister.RealMode(0, code: false),
            Gs = SegmentRegister.RealMode(0, code: false),
            Ss = SegmentRegister.RealMode(0, code: false),
            Gdt = new DescriptorTable { Limit = 0xFFFF },
            Idt = new DescriptorTable { Limit = 0xFFFF },
            Cr0 = 0x6000_0010,
            ApicBase = 0xFEE0_0900,
        };
        s.Cs.Base = 0xFFFF_0000;
        s.Tr = new SegmentRegister { Limit = 0xFFFF, Type = 0xB, Present = true };
        s.Ldt = new SegmentRegister { Limit = 0xFFFF, Type = 0x2, Present = true };
        return s;
    }
}
