// Entry point of the boot loaders: reads the kernel image, recognises its format and hands it to the right loader.
//
// Recognition order: a Linux setup header ("HdrS" at 0x202) → bzImage; an ELF with a Xen PHYS32_ENTRY note → PVH;
// a valid multiboot v1 header in the first 8 KiB → multiboot; any other ELF64 → long-mode vmlinux entry.
using Ringvisor.Core.Memory;

namespace Ringvisor.Machine.Boot;

public static class KernelLoader
{
    /// <summary>
    /// Writes the kernel, initrd/modules, boot tables and MP table into <paramref name="memory"/> and returns the boot
    /// vCPU's state. Every problem with a file is a <see cref="BootImageException"/> naming that file.
    /// </summary>
    /// <exception cref="BootImageException">A file is missing, unreadable, malformed, or does not fit.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The vCPU count is outside 1..<see cref="MpTable.MaxVcpus"/>.</exception>
    public static BootResult Load(GuestMemory memory, KernelLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(options);
        if (options.VcpuCount < 1 || options.VcpuCount > MpTable.MaxVcpus)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.VcpuCount, $"the vCPU count must be between 1 and {MpTable.MaxVcpus}");
        }

        string file = options.KernelPath;
        byte[] data = ImageFile.ReadAll(file, memory.RamSize);
        if (BzImageLoader.Detect(data))
        {
            return BzImageLoader.Load(memory, options, data);
        }

        ElfImage? elf = null;
        if (ElfImage.HasMagic(data))
        {
            elf = ElfImage.Parse(data, file);
            if (elf.PvhEntry is not null)
            {
                return ElfKernelLoader.LoadPvh(memory, options, data, elf);
            }
        }

        int header = MultibootLoader.FindHeader(data, out int badChecksum);
        if (header >= 0)
        {
            return MultibootLoader.Load(memory, options, data, header);
        }

        if (elf is not null)
        {
            return ElfKernelLoader.LoadElf64(memory, options, data, elf);
        }

        if (badChecksum >= 0)
        {
            throw new BootImageException(file, $"multiboot header at offset 0x{badChecksum:X} has a bad checksum");
        }

        throw new BootImageException(file, data.Length < 64
            ? $"file of {data.Length} bytes is too short to be a kernel image"
            : "not a bzImage, ELF or multiboot image");
    }
}
