namespace Ringvisor.Machine.Boot;

/// <summary>A file the loader placed in guest RAM besides the kernel: a multiboot module or a Linux initrd part.</summary>
/// <param name="Path">The file as the user named it.</param>
/// <param name="Address">Guest-physical address of its first byte.</param>
/// <param name="Size">Its length in bytes.</param>
public sealed record BootModule(string Path, ulong Address, ulong Size);
