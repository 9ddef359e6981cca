namespace Ringvisor.Machine.Images;

/// <summary>A built guest image: the kernel (bzImage), its initramfs, the command line it is meant to boot with, and the kernel release.</summary>
public sealed record GuestImagePaths(string Kernel, string Initrd, string DefaultCommandLine, string KernelVersion)
{
    /// <summary>
    /// The same kernel uncompressed (ELF64 vmlinux, extracted from the bzImage's payload on the host), for loaders
    /// that can place it directly and so skip the guest-side decompressor; null when extraction was not possible.
    /// </summary>
    public string? Vmlinux { get; init; }
}
