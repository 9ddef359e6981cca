// Long-mode scaffolding written into guest memory by the test (no guest boot code): identity-mapped page tables
// for the first 4 GiB with 2 MiB pages (user-accessible), a GDT with ring-0 and ring-3 64-bit segments, and a TSS.
// Intel SDM Vol. 3A §4.5 (4-level paging), §3.4.5 (descriptors), §7.7 (64-bit TSS).
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;

namespace Ringvisor.Kvm.Tests.Support;

internal static class LongModeGuest
{
    public const ulong Pml4 = 0x1000;
    public const ulong Pdpt = 0x2000;
    public const ulong PageDirectories = 0x3000; // four of them, 0x3000..0x6FFF
    public const ulong Gdt = 0x500;
    public const ulong Tss = 0x600;
    public const ushort KernelCode = 0x08;
    public const ushort KernelData = 0x10;
    public const ushort UserData = 0x18;
    public const ushort UserCode = 0x20;
    public const ushort TssSelector = 0x28;
    public const ulong KernelStackTop = 0x9_F000;

    // Page-table entry bits (Intel SDM Vol. 3A Table 4-14ff): present, writable, user, page size.
    private const ulong Present = 1, Writable = 2, User = 4, PageSize = 0x80;

    // 64-bit code (L=1), data, DPL 0 / 3; base 0, limit 0xFFFFF pages (SDM Vol. 3A Figure 3-8).
    private const ulong KernelCodeDescriptor = 0x00AF_9A00_0000_FFFF;
    private const ulong KernelDataDescriptor = 0x00CF_9200_0000_FFFF;
    private const ulong UserDataDescriptor = 0x00CF_F200_0000_FFFF;
    private const ulong UserCodeDescriptor = 0x00AF_FA00_0000_FFFF;

    /// <summary>Writes the page tables, GDT and TSS.</summary>
    public static void Build(GuestMemory memory)
    {
        Write(memory, Pml4, Pdpt | Present | Writable | User);
        for (ulong i = 0; i < 4; i++)
        {
            Write(memory, Pdpt + (i * 8), (PageDirectories + (i * 0x1000)) | Present | Writable | User);
        }

        for (ulong i = 0; i < 4 * 512; i++)
        {
            Write(memory, PageDirectories + (i * 8), (i << 21) | Present | Writable | User | PageSize);
        }

        Write(memory, Gdt, 0);
        Write(memory, Gdt + KernelCode, KernelCodeDescriptor);
        Write(memory, Gdt + KernelData, KernelDataDescriptor);
        Write(memory, Gdt + UserData, UserDataDescriptor);
        Write(memory, Gdt + UserCode, UserCodeDescriptor);

        // 64-bit available TSS descriptor (16 bytes, type 9), limit 0x67.
        ulong low = 0x67 | ((Tss & 0xFF_FFFF) << 16) | (0x89UL << 40) | ((Tss >> 24 & 0xFF) << 56);
        Write(memory, Gdt + TssSelector, low);
        Write(memory, Gdt + TssSelector + 8, Tss >> 32);
        Write(memory, Tss + 4, KernelStackTop); // RSP0
    }

    /// <summary>State for 64-bit mode at CPL 0 with interrupts disabled and no IDT (any exception triple-faults).</summary>
    public static CpuState Cpl0State(ulong rip)
    {
        var s = new CpuState();
        s.Registers.Rip = rip;
        s.Registers.Rsp = KernelStackTop;
        s.Registers.Rflags = CpuRegisters.RflagsReserved;
        var sys = SystemRegisters.Reset();
        sys.Cs = SegmentRegister.Flat(KernelCode, code: true, longMode: true);
        sys.Ds = SegmentRegister.Flat(KernelData, code: false);
        sys.Es = sys.Ds;
        sys.Fs = sys.Ds;
        sys.Gs = sys.Ds;
        sys.Ss = sys.Ds;
        sys.Tr = new SegmentRegister { Selector = TssSelector, Base = Tss, Limit = 0x67, Type = 0xB, Present = true };
        sys.Gdt = new DescriptorTable { Base = Gdt, Limit = 0x37 };
        sys.Idt = new DescriptorTable { Base = 0, Limit = 0 };
        sys.Cr0 = SystemRegisters.Cr0Pe | SystemRegisters.Cr0Mp | SystemRegisters.Cr0Et | SystemRegisters.Cr0Ne |
                  SystemRegisters.Cr0Wp | SystemRegisters.Cr0Pg;
        sys.Cr3 = Pml4;
        sys.Cr4 = SystemRegisters.Cr4Pae | SystemRegisters.Cr4Osfxsr | SystemRegisters.Cr4Osxmmexcpt;
        sys.Efer = SystemRegisters.EferSce | SystemRegisters.EferLme | SystemRegisters.EferLma;
        s.System = sys;
        return s;
    }

    private static void Write(GuestMemory memory, ulong gpa, ulong value) =>
        Assert.True(memory.TryWrite(gpa, value), $"guest write at {gpa:X}");
}
