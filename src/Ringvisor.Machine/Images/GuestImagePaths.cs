namespace Ringvisor.Machine.Images;

/// <summary>A built guest image: the kernel (bzImage), its initramfs, the command line it is meant to boot with, and the kernel release.</summary>
public sealed record GuestImagePaths(string Kernel, string Initrd, string DefaultCommandLine, string KernelVersion);
