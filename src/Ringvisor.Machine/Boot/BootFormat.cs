namespace Ringvisor.Machine.Boot;

/// <summary>The values of <see cref="BootResult.Format"/>: which loader took the image and how the vCPU enters it.</summary>
public static class BootFormat
{
    /// <summary>Linux bzImage through the 64-bit boot protocol (long mode, RSI = boot_params).</summary>
    public const string BzImage = "bzImage";

    /// <summary>ELF64 vmlinux entered in long mode at its ELF entry with boot_params (RSI).</summary>
    public const string Elf64 = "elf64";

    /// <summary>ELF with a Xen PHYS32_ENTRY note: 32-bit protected mode, paging off, EBX = hvm_start_info.</summary>
    public const string Pvh = "pvh";

    /// <summary>Multiboot v1 image loaded from its ELF program headers.</summary>
    public const string MultibootElf = "multiboot-elf";

    /// <summary>Multiboot v1 image loaded through the header's address fields (the a.out kludge, flag 16).</summary>
    public const string MultibootAout = "multiboot-aout";
}
