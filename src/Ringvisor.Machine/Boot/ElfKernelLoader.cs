// An uncompressed ELF kernel (vmlinux). With a Xen PHYS32_ENTRY note it boots through PVH (docs/misc/pvh.pandoc in
// Xen: 32-bit protected mode, paging off, EBX = hvm_start_info); an ELF64 without one is entered at its ELF entry in
// long mode with boot_params in RSI, as a bzImage's decompressor would enter it.
using System.Buffers.Binary;
using Ringvisor.Core.Memory;

namespace Ringvisor.Machine.Boot;

internal static class ElfKernelLoader
{
    /// <summary>boot.rst: for kernels that report no initrd_addr_max, modern kernels accept up to 2 GiB - 1.</summary>
    private const uint InitrdAddrMax = 0x7FFF_FFFF;

    private const ulong FourGiB = 1UL << 32;

    public static BootResult LoadPvh(GuestMemory memory, KernelLoadOptions options, byte[] data, ElfImage elf)
    {
        string file = options.KernelPath;
        ulong entry = elf.PvhEntry!.Value;
        if (entry >= FourGiB)
        {
            throw new BootImageException(file, $"PVH entry point 0x{entry:X} is not a 32-bit address");
        }

        if (elf.Loads.FirstOrDefault(s => s.PhysicalEnd > FourGiB) is { MemorySize: > 0 } high)
        {
            throw new BootImageException(file, $"ELF segment {high.Index} at 0x{high.PhysicalAddress:X} is beyond the 4 GiB a 32-bit PVH entry can reach");
        }

        var plan = new BootMemoryPlan(memory);
        var (mpTable, rsdp) = BootSupport.WriteFixedTables(plan, options, longMode: false);
        plan.Claim(BootLayout.BootInfoAddress, BootLayout.BootInfoEnd - BootLayout.BootInfoAddress, "the PVH start info", file);
        ulong cmdline = BootSupport.WriteCommandLine(plan, file, options.CommandLine, ulong.MaxValue);
        ulong kernelEnd = elf.Load(plan, data, file);
        if (!plan.Memory.IsRam(entry))
        {
            throw new BootImageException(file, $"PVH entry point 0x{entry:X} is not in guest RAM");
        }

        var (initrd, initrdSize, parts) = BootSupport.PlaceInitrd(plan, options.InitrdPaths, kernelEnd, plan.LowRamEnd);
        var e820 = E820Map.Build(memory, options.ReservedRanges);
        // Linux takes its initrd from the first module; the files are concatenated into one, as for boot_params.
        HvmStartInfo.Write(plan, cmdline, initrdSize == 0 ? [] : [(initrd, initrdSize)], e820, rsdp);

        return new BootResult(
            BootCpu.Protected32((uint)entry, 0, (uint)BootLayout.BootInfoAddress),
            BootFormat.Pvh,
            entry,
            elf.Loads.Min(s => s.PhysicalAddress),
            kernelEnd,
            e820,
            initrd,
            initrdSize,
            parts,
            BootLayout.BootInfoAddress,
            cmdline,
            mpTable)
        {
            AcpiRsdpAddress = rsdp,
        };
    }

    public static BootResult LoadElf64(GuestMemory memory, KernelLoadOptions options, byte[] data, ElfImage elf)
    {
        string file = options.KernelPath;
        if (!elf.Is64 || elf.Machine != ElfImage.EmX8664)
        {
            throw new BootImageException(file, "32-bit ELF image has neither a PVH entry note nor a multiboot header");
        }

        ulong entry = elf.PhysicalEntry(file);
        if (entry >= FourGiB)
        {
            throw new BootImageException(file, $"ELF entry point 0x{entry:X} is above the 4 GiB the boot page tables map");
        }

        var plan = new BootMemoryPlan(memory);
        var (mpTable, rsdp) = BootSupport.WriteFixedTables(plan, options, longMode: true);
        plan.Claim(BootLayout.ZeroPageAddress, BootLayout.ZeroPageSize, "the zero page", file);
        ulong cmdline = BootSupport.WriteCommandLine(plan, file, options.CommandLine, ZeroPage.DefaultCmdlineSize);
        ulong kernelEnd = elf.Load(plan, data, file);
        var (initrd, initrdSize, parts) = BootSupport.PlaceInitrd(
            plan, options.InitrdPaths, kernelEnd, Math.Min((ulong)InitrdAddrMax + 1, plan.LowRamEnd));

        // No setup header comes with a vmlinux: write the fields a kernel reads from one.
        var e820 = E820Map.Build(memory, options.ReservedRanges);
        Span<byte> zp = new byte[BootLayout.ZeroPageSize];
        BinaryPrimitives.WriteUInt16LittleEndian(zp[ZeroPage.BootFlag..], ZeroPage.BootFlagMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[ZeroPage.Header..], ZeroPage.HeaderMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(zp[ZeroPage.Version..], BzImageLoader.MinimumVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[ZeroPage.InitrdAddrMax..], InitrdAddrMax);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[ZeroPage.CmdlineSize..], ZeroPage.DefaultCmdlineSize);
        BinaryPrimitives.WriteUInt16LittleEndian(zp[ZeroPage.XLoadFlags..], ZeroPage.XlfKernel64);
        ZeroPage.FillBootFields(zp, cmdline, initrd, initrdSize, e820, rsdp);
        plan.Write(BootLayout.ZeroPageAddress, zp);

        return new BootResult(
            BootCpu.LongMode(entry, BootLayout.ZeroPageAddress),
            BootFormat.Elf64,
            entry,
            elf.Loads.Min(s => s.PhysicalAddress),
            kernelEnd,
            e820,
            initrd,
            initrdSize,
            parts,
            BootLayout.ZeroPageAddress,
            cmdline,
            mpTable)
        {
            AcpiRsdpAddress = rsdp,
        };
    }
}
