namespace Ringvisor.Machine.Boot;

/// <summary>What to boot: the kernel image, its initrd files (or multiboot modules), the command line and the vCPU count.</summary>
/// <param name="KernelPath">bzImage, ELF vmlinux (with or without a PVH note) or multiboot v1 image.</param>
/// <param name="InitrdPaths">
/// Linux: the files are concatenated (each starting 4-byte aligned) into one initramfs. Multiboot: one module each.
/// </param>
/// <param name="CommandLine">The kernel command line (ASCII; no NUL characters).</param>
/// <param name="VcpuCount">vCPUs described in the MP table (1..<see cref="MpTable.MaxVcpus"/>).</param>
public sealed record KernelLoadOptions(string KernelPath, IReadOnlyList<string> InitrdPaths, string CommandLine, int VcpuCount)
{
    /// <summary>
    /// Whether to also write ACPI tables (RSDP/RSDT/XSDT/MADT/FADT/FACS/DSDT, see <see cref="AcpiTables"/>) and point
    /// boot_params / hvm_start_info at them. Null (the default) means yes, as QEMU's and Firecracker's firmware do:
    /// kernels built without CONFIG_X86_MPPARSE (Debian's cloud kernels) ignore the MP table and see no IOAPIC and no
    /// PCI interrupt routing unless the MADT and the DSDT's _PRT are there, and log an "ACPI BIOS Error" without an
    /// RSDP. A guest booted with acpi=off falls back to the MP table / the 8259s.
    /// </summary>
    public bool? Acpi { get; init; }

    /// <summary>
    /// Guest-physical ranges outside RAM that the memory map must list as reserved (the kvm engine's TSS and
    /// identity-map pages, <c>KvmEngine.ReservedGuestPhysicalRanges</c>). Empty by default.
    /// </summary>
    public IReadOnlyList<(ulong Address, ulong Size)> ReservedRanges { get; init; } = [];

    /// <summary>The effective <see cref="Acpi"/> choice.</summary>
    public bool WritesAcpi => Acpi ?? true;
}
