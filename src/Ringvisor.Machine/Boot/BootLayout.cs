// Fixed guest-physical addresses of everything the loaders write besides the kernel image itself.
//
//   0x00000 - 0x004FF  real-mode IVT and BIOS data area (we set the base-memory size and EBDA pointer in it)
//   0x00500 - 0x0052F  boot GDT: 0x08 flat 32-bit code, 0x10 64-bit code (__BOOT_CS), 0x18 flat data (__BOOT_DS),
//                      0x20 TSS descriptor (16 bytes so it is valid in long mode too)
//   0x06000 - 0x06FFF  boot information for 32-bit entries: multiboot info or hvm_start_info at 0x6000,
//                      module list at 0x6100, memory map at 0x6400 (up to 128 entries of 24 bytes)
//   0x07000 - 0x07FFF  Linux zero page (struct boot_params)
//   0x08000 - 0x08FFF  a scratch stack for the boot vCPU (RSP/ESP start at its top)
//   0x09000 - 0x0EFFF  identity-mapping page tables: PML4, PDPT, four page directories of 2 MiB pages (0 - 4 GiB)
//   0x20000 - 0x2FFFF  command line, then (multiboot) module strings and the boot loader name
//   0x9FC00 - 0x9FFFF  extended BIOS data area: the MP floating pointer and, when it fits, the MP config table
//   0xA0000 - 0xFFFFF  VGA window and BIOS area, reserved in the memory map (a large MP config table goes at 0xF0000)
//
// Everything stays below 0x9FC00 or inside the reserved BIOS area, so the usable RAM the guest is told about never
// holds our tables except the zero page, command line and boot info, which the guest kernel copies or reserves.
namespace Ringvisor.Machine.Boot;

public static class BootLayout
{
    /// <summary>BIOS data area word: base memory size in KiB (IBM PC BIOS, BDA offset 0x13).</summary>
    public const ulong BdaBaseMemoryKib = 0x413;

    /// <summary>BIOS data area word: real-mode segment of the extended BIOS data area (BDA offset 0x0E).</summary>
    public const ulong BdaEbdaSegment = 0x40E;

    public const ulong GdtAddress = 0x500;
    public const int GdtEntries = 6;

    /// <summary>Flat 32-bit code segment for the multiboot and PVH entries.</summary>
    public const ushort Code32Selector = 0x08;

    /// <summary>__BOOT_CS: Documentation/arch/x86/boot.rst, "64-bit Boot Protocol".</summary>
    public const ushort Code64Selector = 0x10;

    /// <summary>__BOOT_DS: Documentation/arch/x86/boot.rst, "64-bit Boot Protocol".</summary>
    public const ushort DataSelector = 0x18;

    public const ushort TssSelector = 0x20;

    public const ulong BootInfoAddress = 0x6000;
    public const ulong BootInfoModulesAddress = 0x6100;
    public const ulong BootInfoMemoryMapAddress = 0x6400;
    public const ulong BootInfoEnd = 0x7000;

    public const ulong ZeroPageAddress = 0x7000;
    public const ulong ZeroPageSize = 0x1000;

    public const ulong StackBottom = 0x8000;
    public const ulong StackTop = 0x9000;

    public const ulong Pml4Address = 0x9000;
    public const ulong PdptAddress = 0xA000;
    public const ulong PageDirectoryAddress = 0xB000;

    /// <summary>Four page directories of 512 2 MiB pages each map the first 4 GiB.</summary>
    public const int PageDirectoryCount = 4;
    public const ulong PageTablesEnd = PageDirectoryAddress + PageDirectoryCount * 0x1000;

    public const ulong CommandLineAddress = 0x20000;
    public const ulong StringAreaEnd = 0x30000;

    /// <summary>Start of the extended BIOS data area: the last KiB of 640 KiB base memory (MP Spec 1.4 §4).</summary>
    public const ulong EbdaAddress = 0x9FC00;

    /// <summary>The BIOS read-only area where a large MP configuration table goes (MP Spec 1.4 §4: 0xF0000-0xFFFFF).</summary>
    public const ulong BiosAreaAddress = 0xF0000;

    /// <summary>Where conventional RAM resumes above the VGA/BIOS hole and where bzImage kernels load.</summary>
    public const ulong HighMemoryAddress = 0x100000;
}
