// Multiboot v1 (The Multiboot Specification 0.6.96): an ELF image loaded by its program headers, or any image loaded
// through the header's address fields (the "a.out kludge", flag 16); modules above the kernel; entry in 32-bit
// protected mode with paging off, EAX = 0x2BADB002 and EBX = the multiboot information structure (§3.2).
using System.Buffers.Binary;
using Ringvisor.Core.Memory;

namespace Ringvisor.Machine.Boot;

internal static class MultibootLoader
{
    private const ulong FourGiB = 1UL << 32;

    /// <summary>Offset of the first valid header (magic + flags + checksum = 0) in the first 8 KiB, or -1.</summary>
    /// <param name="badChecksum">Offset of a magic with a wrong checksum when no valid header exists, else -1.</param>
    public static int FindHeader(ReadOnlySpan<byte> data, out int badChecksum)
    {
        badChecksum = -1;
        int limit = Math.Min(data.Length, MultibootInfo.HeaderSearchLimit);
        for (int at = 0; at + 12 <= limit; at += 4)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(data[at..]) != MultibootInfo.HeaderMagic)
            {
                continue;
            }

            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(data[(at + 4)..]);
            uint checksum = BinaryPrimitives.ReadUInt32LittleEndian(data[(at + 8)..]);
            if (unchecked(MultibootInfo.HeaderMagic + flags + checksum) == 0)
            {
                return at;
            }

            if (badChecksum < 0)
            {
                badChecksum = at;
            }
        }

        return -1;
    }

    public static BootResult Load(GuestMemory memory, KernelLoadOptions options, byte[] image, int headerOffset)
    {
        string file = options.KernelPath;
        var data = image.AsSpan();
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(data[(headerOffset + 4)..]);
        if ((flags & MultibootInfo.FlagVideoMode) != 0)
        {
            throw new BootImageException(file, "multiboot header requires video mode information (flag 2), which Ringvisor does not provide");
        }

        uint unsupported = flags & MultibootInfo.RequiredFlagsMask & ~(MultibootInfo.FlagPageAlignModules | MultibootInfo.FlagMemoryInfo);
        if (unsupported != 0)
        {
            throw new BootImageException(file, $"multiboot header requires unsupported features (flags 0x{unsupported:X})");
        }

        if (options.InitrdPaths.Count > MultibootInfo.MaxModules)
        {
            throw new BootImageException(file, $"{options.InitrdPaths.Count} modules given; at most {MultibootInfo.MaxModules} are supported");
        }

        var plan = new BootMemoryPlan(memory);
        var (mpTable, rsdp) = BootSupport.WriteFixedTables(plan, options, longMode: false);
        plan.Claim(BootLayout.BootInfoAddress, BootLayout.BootInfoEnd - BootLayout.BootInfoAddress, "the multiboot information", file);

        // Parse and check the whole image before writing any of it.
        string format;
        ulong entry, kernelStart, kernelEnd;
        ElfImage? elf = null;
        (ulong Load, ulong FileOffset, ulong FileBytes, ulong BssEnd) aout = default;
        if ((flags & MultibootInfo.FlagAddressFields) != 0)
        {
            format = BootFormat.MultibootAout;
            aout = ParseAddressFields(data, headerOffset, file, out entry);
            kernelStart = aout.Load;
            kernelEnd = aout.BssEnd;
        }
        else
        {
            if (!ElfImage.HasMagic(data))
            {
                throw new BootImageException(file, "multiboot image is not ELF and its header has no address fields (flag 16)");
            }

            format = BootFormat.MultibootElf;
            elf = ElfImage.Parse(data, file);
            entry = elf.PhysicalEntry(file);
            kernelStart = elf.Loads.Min(s => s.PhysicalAddress);
            kernelEnd = elf.Loads.Max(s => s.PhysicalEnd);
            if (kernelEnd > FourGiB || entry >= FourGiB)
            {
                throw new BootImageException(file, $"multiboot image reaches 0x{kernelEnd:X}, beyond the 32-bit address space");
            }
        }

        // The multiboot command line is the boot loader's whole line, kernel file name first (GRUB's "multiboot FILE
        // ARGS", QEMU's "-kernel FILE -append ARGS"); kernels such as kvm-unit-tests' skip that first word.
        string line = options.CommandLine.Length == 0 ? file : $"{file} {options.CommandLine}";
        ulong cursor = BootLayout.CommandLineAddress;
        ulong cmdline = BootSupport.WriteString(plan, ref cursor, Checked(file, line), "the command line", file);
        ulong loaderName = BootSupport.WriteString(plan, ref cursor, MultibootInfo.LoaderName, "the boot loader name", file);

        if (elf is not null)
        {
            elf.Load(plan, data, file);
        }
        else
        {
            plan.Claim(aout.Load, aout.BssEnd - aout.Load, "the multiboot image (load_addr to bss_end_addr)", file);
            plan.Write(aout.Load, data.Slice((int)aout.FileOffset, (int)aout.FileBytes));
            plan.Zero(aout.Load + aout.FileBytes, aout.BssEnd - aout.Load - aout.FileBytes);
        }

        var modules = new List<BootModule>();
        ulong next = ImageFile.PageAlignUp(kernelEnd);
        ulong ceiling = Math.Min(plan.LowRamEnd, FourGiB);
        foreach (string path in options.InitrdPaths)
        {
            long length = ImageFile.Length(path);
            if (next > ceiling || (ulong)length > ceiling - next)
            {
                throw new BootImageException(path, $"module of {length} bytes does not fit in guest RAM between 0x{next:X} and 0x{ceiling:X}");
            }

            plan.Claim(next, (ulong)length, "a multiboot module", path);
            ImageFile.CopyToGuest(path, length, plan, next);
            modules.Add(new BootModule(path, next, (ulong)length));
            next = ImageFile.PageAlignUp(next + (ulong)length);
        }

        var moduleStrings = new List<ulong>(modules.Count);
        foreach (var m in modules)
        {
            moduleStrings.Add(BootSupport.WriteString(plan, ref cursor, m.Path, $"the name of module {m.Path}", m.Path));
        }

        var e820 = E820Map.Build(memory, options.ReservedRanges);
        WriteInfo(plan, cmdline, loaderName, modules, moduleStrings, e820);

        return new BootResult(
            BootCpu.Protected32((uint)entry, MultibootInfo.BootloaderMagic, (uint)BootLayout.BootInfoAddress),
            format,
            entry,
            kernelStart,
            kernelEnd,
            e820,
            0,
            0,
            modules,
            BootLayout.BootInfoAddress,
            cmdline,
            mpTable)
        {
            AcpiRsdpAddress = rsdp,
        };
    }

    private static string Checked(string file, string commandLine)
    {
        _ = BootSupport.EncodeCommandLine(file, commandLine, ulong.MaxValue);
        return commandLine;
    }

    /// <summary>§3.1.3: where the a.out kludge says the image goes, validated against the file.</summary>
    private static (ulong Load, ulong FileOffset, ulong FileBytes, ulong BssEnd) ParseAddressFields(
        ReadOnlySpan<byte> data, int headerOffset, string file, out ulong entry)
    {
        if (headerOffset + MultibootInfo.AddressHeaderSize > data.Length)
        {
            throw new BootImageException(file, "multiboot header with address fields (flag 16) is cut off by the end of the file");
        }

        var h = data[headerOffset..];
        ulong headerAddr = BinaryPrimitives.ReadUInt32LittleEndian(h[MultibootInfo.HeaderAddr..]);
        ulong loadAddr = BinaryPrimitives.ReadUInt32LittleEndian(h[MultibootInfo.LoadAddr..]);
        ulong loadEndAddr = BinaryPrimitives.ReadUInt32LittleEndian(h[MultibootInfo.LoadEndAddr..]);
        ulong bssEndAddr = BinaryPrimitives.ReadUInt32LittleEndian(h[MultibootInfo.BssEndAddr..]);
        entry = BinaryPrimitives.ReadUInt32LittleEndian(h[MultibootInfo.EntryAddr..]);

        if (loadAddr > headerAddr || headerAddr - loadAddr > (ulong)headerOffset)
        {
            throw new BootImageException(file,
                $"multiboot load_addr 0x{loadAddr:X} and header_addr 0x{headerAddr:X} put the image start before the beginning of the file");
        }

        ulong fileOffset = (ulong)headerOffset - (headerAddr - loadAddr);
        ulong available = (ulong)data.Length - fileOffset;
        ulong fileBytes;
        if (loadEndAddr == 0)
        {
            fileBytes = available;
        }
        else
        {
            if (loadEndAddr <= loadAddr)
            {
                throw new BootImageException(file, $"multiboot load_end_addr 0x{loadEndAddr:X} is not above load_addr 0x{loadAddr:X}");
            }

            fileBytes = loadEndAddr - loadAddr;
            if (fileBytes > available)
            {
                throw new BootImageException(file,
                    $"multiboot load_end_addr 0x{loadEndAddr:X} needs {fileBytes} bytes from file offset 0x{fileOffset:X}, but the file holds {available}");
            }
        }

        ulong loadEnd = loadAddr + fileBytes;
        ulong bssEnd = bssEndAddr == 0 ? loadEnd : bssEndAddr;
        if (bssEnd < loadEnd)
        {
            throw new BootImageException(file, $"multiboot bss_end_addr 0x{bssEndAddr:X} is below the end of the loaded image 0x{loadEnd:X}");
        }

        if (bssEnd > FourGiB)
        {
            throw new BootImageException(file, $"multiboot image reaches 0x{bssEnd:X}, beyond the 32-bit address space");
        }

        if (entry < loadAddr || entry >= bssEnd)
        {
            throw new BootImageException(file, $"multiboot entry_addr 0x{entry:X} lies outside the image (0x{loadAddr:X}-0x{bssEnd - 1:X})");
        }

        return (loadAddr, fileOffset, fileBytes, bssEnd);
    }

    private static void WriteInfo(BootMemoryPlan plan, ulong cmdline, ulong loaderName, IReadOnlyList<BootModule> modules,
        IReadOnlyList<ulong> moduleStrings, IReadOnlyList<E820Entry> map)
    {
        Span<byte> page = new byte[BootLayout.BootInfoEnd - BootLayout.BootInfoAddress];
        uint flags = MultibootInfo.InfoMemory | MultibootInfo.InfoCmdline | MultibootInfo.InfoMods | MultibootInfo.InfoMmap |
                     MultibootInfo.InfoBootLoaderName;
        BinaryPrimitives.WriteUInt32LittleEndian(page[MultibootInfo.Flags..], flags);
        // §3.3: mem_lower counts KiB from 0 (at most 640), mem_upper KiB from 1 MiB to the first hole.
        BinaryPrimitives.WriteUInt32LittleEndian(page[MultibootInfo.MemLower..], (uint)(BootLayout.EbdaAddress / 1024));
        BinaryPrimitives.WriteUInt32LittleEndian(page[MultibootInfo.MemUpper..], (uint)((plan.LowRamEnd - BootLayout.HighMemoryAddress) / 1024));
        BinaryPrimitives.WriteUInt32LittleEndian(page[MultibootInfo.Cmdline..], (uint)cmdline);
        BinaryPrimitives.WriteUInt32LittleEndian(page[MultibootInfo.ModsCount..], (uint)modules.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(page[MultibootInfo.ModsAddr..], (uint)BootLayout.BootInfoModulesAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(page[MultibootInfo.MmapLength..], (uint)(map.Count * MultibootInfo.MmapEntrySize));
        BinaryPrimitives.WriteUInt32LittleEndian(page[MultibootInfo.MmapAddr..], (uint)BootLayout.BootInfoMemoryMapAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(page[MultibootInfo.BootLoaderName..], (uint)loaderName);

        int modAt = (int)(BootLayout.BootInfoModulesAddress - BootLayout.BootInfoAddress);
        for (int i = 0; i < modules.Count; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(page[modAt..], (uint)modules[i].Address);
            BinaryPrimitives.WriteUInt32LittleEndian(page[(modAt + 4)..], (uint)(modules[i].Address + modules[i].Size));
            BinaryPrimitives.WriteUInt32LittleEndian(page[(modAt + 8)..], (uint)moduleStrings[i]);
            modAt += MultibootInfo.ModuleEntrySize;
        }

        int mapAt = (int)(BootLayout.BootInfoMemoryMapAddress - BootLayout.BootInfoAddress);
        foreach (var e in map)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(page[mapAt..], MultibootInfo.MmapEntrySizeField);
            BinaryPrimitives.WriteUInt64LittleEndian(page[(mapAt + 4)..], e.Address);
            BinaryPrimitives.WriteUInt64LittleEndian(page[(mapAt + 12)..], e.Size);
            BinaryPrimitives.WriteUInt32LittleEndian(page[(mapAt + 20)..], (uint)e.Type);
            mapAt += MultibootInfo.MmapEntrySize;
        }

        plan.Write(BootLayout.BootInfoAddress, page);
    }
}
