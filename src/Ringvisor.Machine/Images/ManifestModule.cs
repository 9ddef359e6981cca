namespace Ringvisor.Machine.Images;

/// <summary>A module in the initramfs: its name and absolute path in the guest.</summary>
public sealed record ManifestModule(string Name, string GuestPath);
