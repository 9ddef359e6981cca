namespace Ringvisor.Machine.Boot;

/// <summary>What to boot: the kernel image, its initrd files (or multiboot modules), the command line and the vCPU count.</summary>
/// <param name="KernelPath">bzImage, ELF vmlinux (with or without a PVH note) or multiboot v1 image.</param>
/// <param name="InitrdPaths">
/// Linux: the files are concatenated (each starting 4-byte aligned) into one initramfs. Multiboot: one module each.
/// </param>
/// <param name="CommandLine">The kernel command line (ASCII; no NUL characters).</param>
/// <param name="VcpuCount">vCPUs described in the MP table (1..<see cref="MpTable.MaxVcpus"/>).</param>
public sealed record KernelLoadOptions(string KernelPath, IReadOnlyList<string> InitrdPaths, string CommandLine, int VcpuCount);
