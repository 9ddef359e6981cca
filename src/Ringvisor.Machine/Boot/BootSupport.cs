// Steps shared by the loaders: the fixed low-memory tables, the command line and the Linux initrd.
using System.Text;

namespace Ringvisor.Machine.Boot;

internal static class BootSupport
{
    /// <summary>
    /// Claims and writes the BDA, GDT, stack, MP table, ACPI tables (when asked) and (for long-mode entries) the page
    /// tables. Returns the MP floating pointer and the RSDP (0 without ACPI).
    /// </summary>
    public static (ulong MpTable, ulong Rsdp) WriteFixedTables(BootMemoryPlan plan, KernelLoadOptions options, bool longMode)
    {
        string file = options.KernelPath;
        if (plan.LowRamEnd < BootLayout.HighMemoryAddress)
        {
            throw new BootImageException(file, $"guest RAM below the PCI hole is {plan.LowRamEnd >> 10} KiB; booting needs at least 1 MiB");
        }

        BiosDataArea.Write(plan, file);
        BootCpu.WriteGdt(plan, file);
        BootCpu.ClaimStack(plan, file);
        if (longMode)
        {
            BootCpu.WriteIdentityPageTables(plan, file);
        }

        ulong mpTable = BiosDataArea.WriteMpTable(plan, options.VcpuCount, file);
        ulong rsdp = options.WritesAcpi ? AcpiTables.Write(plan.Memory, options.VcpuCount) : 0;
        return (mpTable, rsdp);
    }

    /// <summary>Checks the command line and its length limit; returns its bytes with the terminating NUL.</summary>
    public static byte[] EncodeCommandLine(string file, string commandLine, ulong maxLength)
    {
        if (commandLine.Contains('\0', StringComparison.Ordinal))
        {
            throw new BootImageException(file, "the command line contains a NUL character");
        }

        byte[] bytes = Encoding.UTF8.GetBytes(commandLine + "\0");
        ulong length = (ulong)bytes.Length - 1;
        ulong limit = Math.Min(maxLength, BootLayout.StringAreaEnd - BootLayout.CommandLineAddress - 1);
        if (length > limit)
        {
            throw new BootImageException(file, $"the command line is {length} bytes long; this kernel accepts at most {limit} (cmdline_size)");
        }

        return bytes;
    }

    /// <summary>Writes the command line at <see cref="BootLayout.CommandLineAddress"/>; returns its address.</summary>
    public static ulong WriteCommandLine(BootMemoryPlan plan, string file, string commandLine, ulong maxLength)
    {
        byte[] bytes = EncodeCommandLine(file, commandLine, maxLength);
        plan.Claim(BootLayout.CommandLineAddress, (ulong)bytes.Length, "the command line", file);
        plan.Write(BootLayout.CommandLineAddress, bytes);
        return BootLayout.CommandLineAddress;
    }

    /// <summary>Claims and writes a NUL-terminated string at <paramref name="cursor"/> and advances it.</summary>
    public static ulong WriteString(BootMemoryPlan plan, ref ulong cursor, string text, string what, string file)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text + "\0");
        if ((ulong)bytes.Length > BootLayout.StringAreaEnd - cursor)
        {
            throw new BootImageException(file, $"{what} does not fit in the boot string area (0x{BootLayout.CommandLineAddress:X}-0x{BootLayout.StringAreaEnd - 1:X})");
        }

        ulong address = cursor;
        plan.Claim(address, (ulong)bytes.Length, what, file);
        plan.Write(address, bytes);
        cursor += (ulong)bytes.Length;
        return address;
    }

    /// <summary>
    /// Concatenates the initrd files (each 4-byte aligned, as the kernel's cpio unpacker expects) as high as possible
    /// below <paramref name="ceiling"/>, page-aligned, and not below <paramref name="floor"/>. Returns (0, 0) with
    /// no files.
    /// </summary>
    public static (ulong Address, ulong Size, IReadOnlyList<BootModule> Parts) PlaceInitrd(
        BootMemoryPlan plan, IReadOnlyList<string> paths, ulong floor, ulong ceiling)
    {
        if (paths.Count == 0)
        {
            return (0, 0, []);
        }

        var lengths = new long[paths.Count];
        var offsets = new ulong[paths.Count];
        ulong total = 0;
        for (int i = 0; i < paths.Count; i++)
        {
            lengths[i] = ImageFile.Length(paths[i]);
            offsets[i] = ImageFile.AlignUp(total, 4);
            total = offsets[i] + (ulong)lengths[i];
            if (total > plan.Memory.RamSize)
            {
                throw new BootImageException(paths[i], $"initrd of {total} bytes in all is larger than guest RAM ({plan.Memory.RamSize} bytes)");
            }
        }

        if (total == 0)
        {
            return (0, 0, []);
        }

        floor = ImageFile.PageAlignUp(floor);
        ulong address = total <= ceiling ? ImageFile.AlignDown(ceiling - total, 4096) : 0;
        if (total > ceiling || address < floor || !plan.IsFree(address, total))
        {
            throw new BootImageException(paths[0],
                $"initrd of {total} bytes does not fit in guest RAM between the kernel's end at 0x{floor:X} and 0x{ceiling:X} " +
                $"({(ceiling > floor ? ceiling - floor : 0)} bytes free)");
        }

        plan.Claim(address, total, "the initrd", paths[0]);
        var parts = new List<BootModule>(paths.Count);
        for (int i = 0; i < paths.Count; i++)
        {
            // Padding between files must be zero so the unpacker skips it.
            ulong padStart = i == 0 ? address : address + offsets[i - 1] + (ulong)lengths[i - 1];
            plan.Zero(padStart, address + offsets[i] - padStart);
            ImageFile.CopyToGuest(paths[i], lengths[i], plan, address + offsets[i]);
            parts.Add(new BootModule(paths[i], address + offsets[i], (ulong)lengths[i]));
        }

        return (address, total, parts);
    }
}
