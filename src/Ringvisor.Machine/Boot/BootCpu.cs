// The boot vCPU's starting state and the CPU tables it needs: the boot GDT, the identity-mapping page tables for
// long-mode entries, and the register values each boot protocol prescribes.
using System.Buffers.Binary;
using Ringvisor.Core.Cpu;

namespace Ringvisor.Machine.Boot;

internal static class BootCpu
{
    // Intel SDM Vol. 3A §4.5 (4-level paging): present, writable; PS selects a 2 MiB page in a PDE.
    private const ulong PtePresent = 1UL << 0;
    private const ulong PteWritable = 1UL << 1;
    private const ulong PtePageSize = 1UL << 7;
    private const ulong LargePageSize = 2UL << 20;

    // Intel SDM Vol. 3A §7.2.2: the minimum size of a TSS (limit 0x67); PVH requires exactly this TR shape.
    private const uint TssLimit = 0x67;

    // Intel SDM Vol. 3A Table 3-2: busy 32-bit TSS (in IA-32e mode: busy 64-bit TSS).
    private const byte TssBusyType = 0xB;

    public static SegmentRegister Code32 => SegmentRegister.Flat(BootLayout.Code32Selector, code: true);

    public static SegmentRegister Code64 => SegmentRegister.Flat(BootLayout.Code64Selector, code: true, longMode: true);

    public static SegmentRegister Data => SegmentRegister.Flat(BootLayout.DataSelector, code: false);

    public static SegmentRegister Tss => new()
    {
        Selector = BootLayout.TssSelector,
        Base = 0,
        Limit = TssLimit,
        Type = TssBusyType,
        Present = true,
    };

    /// <summary>Claims and writes the boot GDT (see <see cref="BootLayout"/> for the selectors).</summary>
    public static void WriteGdt(BootMemoryPlan plan, string file)
    {
        const int Size = BootLayout.GdtEntries * 8;
        plan.Claim(BootLayout.GdtAddress, Size, "the boot GDT", file);
        Span<byte> gdt = stackalloc byte[Size];
        gdt.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[0x08..], Descriptor(Code32));
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[0x10..], Descriptor(Code64));
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[0x18..], Descriptor(Data));
        // A 16-byte system descriptor (SDM Vol. 3A §7.2.3); its upper half holds base bits 63:32, which are zero.
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[0x20..], Descriptor(Tss));
        plan.Write(BootLayout.GdtAddress, gdt);
    }

    /// <summary>Claims and writes PML4 → PDPT → 4 page directories of 2 MiB pages identity-mapping 0 - 4 GiB.</summary>
    public static void WriteIdentityPageTables(BootMemoryPlan plan, string file)
    {
        plan.Claim(BootLayout.Pml4Address, BootLayout.PageTablesEnd - BootLayout.Pml4Address, "the boot page tables", file);
        Span<byte> page = stackalloc byte[4096];

        page.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(page, BootLayout.PdptAddress | PtePresent | PteWritable);
        plan.Write(BootLayout.Pml4Address, page);

        page.Clear();
        for (int i = 0; i < BootLayout.PageDirectoryCount; i++)
        {
            ulong pd = BootLayout.PageDirectoryAddress + (ulong)i * 0x1000;
            BinaryPrimitives.WriteUInt64LittleEndian(page[(i * 8)..], pd | PtePresent | PteWritable);
        }

        plan.Write(BootLayout.PdptAddress, page);

        for (int i = 0; i < BootLayout.PageDirectoryCount; i++)
        {
            for (int e = 0; e < 512; e++)
            {
                ulong frame = ((ulong)i * 512 + (ulong)e) * LargePageSize;
                BinaryPrimitives.WriteUInt64LittleEndian(page[(e * 8)..], frame | PtePresent | PteWritable | PtePageSize);
            }

            plan.Write(BootLayout.PageDirectoryAddress + (ulong)i * 0x1000, page);
        }
    }

    /// <summary>Claims the scratch stack page.</summary>
    public static void ClaimStack(BootMemoryPlan plan, string file) =>
        plan.Claim(BootLayout.StackBottom, BootLayout.StackTop - BootLayout.StackBottom, "the boot stack", file);

    /// <summary>
    /// Long mode with paging on the identity map, CS = __BOOT_CS, data segments = __BOOT_DS, interrupts off
    /// (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol").
    /// </summary>
    public static CpuState LongMode(ulong entry, ulong rsi)
    {
        var state = Common();
        state.Registers.Rip = entry;
        state.Registers.Rsi = rsi;
        state.System.Cs = Code64;
        state.System.Cr3 = BootLayout.Pml4Address;
        state.System.Cr4 = SystemRegisters.Cr4Pae;
        state.System.Cr0 |= SystemRegisters.Cr0Pg;
        state.System.Efer = SystemRegisters.EferLme | SystemRegisters.EferLma;
        return state;
    }

    /// <summary>32-bit protected mode, flat segments, paging off, interrupts off (multiboot §3.2, PVH boot ABI).</summary>
    public static CpuState Protected32(uint entry, uint eax, uint ebx)
    {
        var state = Common();
        state.Registers.Rip = entry;
        state.Registers.Rax = eax;
        state.Registers.Rbx = ebx;
        state.System.Cs = Code32;
        return state;
    }

    private static CpuState Common()
    {
        var state = new CpuState();
        state.Registers.Rflags = CpuRegisters.RflagsReserved;
        state.Registers.Rsp = BootLayout.StackTop;
        var data = Data;
        state.System.Ds = data;
        state.System.Es = data;
        state.System.Fs = data;
        state.System.Gs = data;
        state.System.Ss = data;
        state.System.Tr = Tss;
        state.System.Gdt = new DescriptorTable { Base = BootLayout.GdtAddress, Limit = BootLayout.GdtEntries * 8 - 1 };
        // An empty IDT: any exception before the kernel installs its own becomes a triple fault the VMM reports,
        // rather than a jump through whatever lies at address 0.
        state.System.Idt = new DescriptorTable { Base = 0, Limit = 0 };
        state.System.Cr0 = SystemRegisters.Cr0Pe | SystemRegisters.Cr0Et | SystemRegisters.Cr0Ne;
        state.System.Cr4 = 0;
        state.System.Efer = 0;
        return state;
    }

    /// <summary>Packs a segment cache into an 8-byte GDT descriptor (Intel SDM Vol. 3A §3.4.5, Figure 3-8).</summary>
    internal static ulong Descriptor(SegmentRegister s)
    {
        ulong limit = s.Granularity ? s.Limit >> 12 : s.Limit;
        ulong attributes = s.Attributes;
        return (limit & 0xFFFF)
            | ((s.Base & 0xFF_FFFF) << 16)
            | ((attributes & 0xFF) << 40)
            | (((limit >> 16) & 0xF) << 48)
            | (((attributes >> 12) & 0xF) << 52)
            | (((s.Base >> 24) & 0xFF) << 56);
    }
}
