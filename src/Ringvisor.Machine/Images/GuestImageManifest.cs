// <cache>/default/manifest.json: what the cached image was built from. It is written last (temp file + rename), so
// its presence with matching file sizes is what marks an image as complete.
namespace Ringvisor.Machine.Images;

public sealed record GuestImageManifest
{
    /// <summary>Bumped when the image layout changes in a way that requires a rebuild.</summary>
    public required int FormatVersion { get; init; }

    /// <summary>Kernel release, e.g. "6.1.0-56-cloud-amd64" (the /lib/modules directory name).</summary>
    public required string KernelVersion { get; init; }

    public required string KernelPackage { get; init; }

    public required string KernelPackageVersion { get; init; }

    public required string BusyboxPackage { get; init; }

    public required string BusyboxPackageVersion { get; init; }

    /// <summary>Modules in the initramfs, in load order.</summary>
    public required IReadOnlyList<ManifestModule> Modules { get; init; }

    /// <summary>Wanted drivers the kernel has built in (nothing to load).</summary>
    public required IReadOnlyList<string> BuiltInModules { get; init; }

    public required long KernelSize { get; init; }

    public required long InitrdSize { get; init; }

    /// <summary>Size of the extracted vmlinux, or null when the image has none.</summary>
    public long? VmlinuxSize { get; init; }

    /// <summary>SHA-256 of the generated /init; a changed generator makes the cached image stale.</summary>
    public required string InitSha256 { get; init; }

    public required string DefaultCommandLine { get; init; }

    public required DateTimeOffset BuildTimeUtc { get; init; }
}
