// The default guest Ringvisor boots when no --kernel is given: Debian 12's cloud kernel with a busybox initramfs
// built from Debian packages, cached per user. Layout: <cache>/default/{vmlinuz, initramfs.img, vmlinux, manifest.json}.
// Files are built in a scratch directory and renamed into place, manifest.json last, so an interrupted build never
// leaves an image that looks complete; a missing or wrong-sized file, an unreadable manifest, or an /init generator
// that has changed since the build makes the cache stale and EnsureBuilt rebuilds it. A lock file serialises builds
// across processes (parallel test runs, two CLIs).
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Ringvisor.Machine.Images;

public static class DefaultGuestImage
{
    /// <summary>
    /// The kernel command line the image is made for. console=ttyS0 puts the console on the first UART;
    /// panic=-1 reboots at once on a panic (the VMM sees a reset instead of a guest spinning forever);
    /// loglevel=4 keeps warnings and errors on the console but drops the ~300 informational boot lines, each
    /// character of which is a UART exit (slow under emulation), without hiding real problems as "quiet" would.
    /// </summary>
    public const string CommandLine = "console=ttyS0 panic=-1 loglevel=4";

    /// <summary>Bumped when the image layout changes so that older caches are rebuilt.</summary>
    internal const int FormatVersion = 2;

    private const string ImageDirectoryName = "default";
    private const string ManifestFileName = "manifest.json";
    private const string LockFileName = "default.lock";
    private static readonly object s_gate = new();

    // Package versions such as "1:1.35.0-4+deb12u1" stay readable ('+' is not escaped): the file is for people too.
    private static readonly GuestImageJsonContext s_manifestWriter = new(new JsonSerializerOptions(GuestImageJsonContext.Default.Options)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    /// <summary>$RINGVISOR_CACHE, else $XDG_CACHE_HOME/ringvisor, else ~/.cache/ringvisor.</summary>
    public static string CacheDirectory =>
        ResolveCacheDirectory(Environment.GetEnvironmentVariable, Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));

    /// <summary>The cached image when it is built and complete; otherwise null.</summary>
    public static GuestImagePaths? TryGetCached() => TryGetCached(CacheDirectory);

    /// <summary>Returns the cached image, building it first when it is missing or stale (or <paramref name="force"/>).</summary>
    /// <exception cref="GuestImageBuildException">A build step failed; the message names it.</exception>
    public static GuestImagePaths EnsureBuilt(IProgress<string>? progress, bool force = false) => EnsureBuilt(CacheDirectory, progress, force);

    /// <summary>The manifest of the cached image, or null when there is no complete one.</summary>
    public static GuestImageManifest? TryGetManifest() => TryGetManifest(CacheDirectory);

    internal static string ResolveCacheDirectory(Func<string, string?> environment, string home)
    {
        string? explicitDir = environment("RINGVISOR_CACHE");
        if (!string.IsNullOrEmpty(explicitDir))
        {
            return Path.GetFullPath(explicitDir);
        }

        // XDG Base Directory Specification: a relative $XDG_CACHE_HOME is invalid and must be ignored.
        string? xdg = environment("XDG_CACHE_HOME");
        if (!string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg))
        {
            return Path.Combine(xdg, "ringvisor");
        }

        return Path.Combine(home, ".cache", "ringvisor");
    }

    internal static GuestImagePaths? TryGetCached(string cacheDirectory)
    {
        var manifest = TryGetManifest(cacheDirectory);
        if (manifest is null)
        {
            return null;
        }

        string dir = Path.Combine(cacheDirectory, ImageDirectoryName);
        return new GuestImagePaths(
            Path.Combine(dir, GuestImageBuilder.KernelFileName),
            Path.Combine(dir, GuestImageBuilder.InitrdFileName),
            CommandLine, // the image does not depend on it, so the current default applies to older builds too
            manifest.KernelVersion)
        {
            Vmlinux = manifest.VmlinuxSize is null ? null : Path.Combine(dir, GuestImageBuilder.VmlinuxFileName),
        };
    }

    internal static GuestImageManifest? TryGetManifest(string cacheDirectory)
    {
        string dir = Path.Combine(cacheDirectory, ImageDirectoryName);
        string manifestPath = Path.Combine(dir, ManifestFileName);
        string kernel = Path.Combine(dir, GuestImageBuilder.KernelFileName);
        string initrd = Path.Combine(dir, GuestImageBuilder.InitrdFileName);
        GuestImageManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(File.ReadAllText(manifestPath), GuestImageJsonContext.Default.GuestImageManifest);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or NotSupportedException)
        {
            return null;
        }

        if (manifest is null || manifest.FormatVersion != FormatVersion || manifest.Modules is null || manifest.DefaultCommandLine is null)
        {
            return null;
        }

        if (!SizeIs(kernel, manifest.KernelSize) || !SizeIs(initrd, manifest.InitrdSize) ||
            !ImageFileChecks.IsBzImage(kernel) || !ImageFileChecks.IsGzip(initrd))
        {
            return null;
        }

        string vmlinux = Path.Combine(dir, GuestImageBuilder.VmlinuxFileName);
        if (manifest.VmlinuxSize is { } vmlinuxSize && (!SizeIs(vmlinux, vmlinuxSize) || !ImageFileChecks.IsElf(vmlinux)))
        {
            return null;
        }

        // An /init generator changed since this image was built makes it stale.
        string init = InitScript.Generate(manifest.Modules.Select(m => m.GuestPath).ToList());
        return GuestImageBuilder.Sha256Hex(init) == manifest.InitSha256 ? manifest : null;
    }

    internal static GuestImagePaths EnsureBuilt(string cacheDirectory, IProgress<string>? progress, bool force)
    {
        // The monitor serialises threads of this process; the lock file serialises processes.
        lock (s_gate)
        {
            Directory.CreateDirectory(cacheDirectory);
            using var fileLock = AcquireLock(Path.Combine(cacheDirectory, LockFileName), progress);
            if (!force && TryGetCached(cacheDirectory) is { } cached)
            {
                return cached;
            }

            string work = Path.Combine(cacheDirectory, $"build-{Environment.ProcessId}-{Guid.NewGuid():N}");
            try
            {
                string staged = Path.Combine(work, "out");
                var manifest = GuestImageBuilder.Build(work, staged, CommandLine, progress);
                Install(cacheDirectory, staged, manifest);
            }
            finally
            {
                TryDeleteDirectory(work);
            }

            var built = TryGetCached(cacheDirectory)
                ?? throw new GuestImageBuildException($"the image built into {cacheDirectory} failed its completeness check");
            progress?.Report($"guest image ready: {built.Kernel} ({new FileInfo(built.Kernel).Length >> 10} KiB), " +
                             $"{built.Initrd} ({new FileInfo(built.Initrd).Length >> 10} KiB), kernel {built.KernelVersion}");
            return built;
        }
    }

    private static void Install(string cacheDirectory, string staged, GuestImageManifest manifest)
    {
        string dir = Path.Combine(cacheDirectory, ImageDirectoryName);
        Directory.CreateDirectory(dir);

        // Invalidate first: between here and the final rename the image has no manifest and so is not "complete".
        File.Delete(Path.Combine(dir, ManifestFileName));
        File.Move(Path.Combine(staged, GuestImageBuilder.KernelFileName), Path.Combine(dir, GuestImageBuilder.KernelFileName), overwrite: true);
        File.Move(Path.Combine(staged, GuestImageBuilder.InitrdFileName), Path.Combine(dir, GuestImageBuilder.InitrdFileName), overwrite: true);
        string vmlinux = Path.Combine(staged, GuestImageBuilder.VmlinuxFileName);
        if (File.Exists(vmlinux))
        {
            File.Move(vmlinux, Path.Combine(dir, GuestImageBuilder.VmlinuxFileName), overwrite: true);
        }
        else
        {
            File.Delete(Path.Combine(dir, GuestImageBuilder.VmlinuxFileName));
        }
        string tmp = Path.Combine(dir, ManifestFileName + ".tmp");
        File.WriteAllText(tmp, JsonSerializer.Serialize(manifest, s_manifestWriter.GuestImageManifest));
        File.Move(tmp, Path.Combine(dir, ManifestFileName), overwrite: true);
    }

    private static FileStream AcquireLock(string path, IProgress<string>? progress)
    {
        bool told = false;
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(15);
        while (true)
        {
            try
            {
                // FileShare.None takes an exclusive flock(2) on Linux; the kernel drops it if the process dies.
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException e)
            {
                if (DateTime.UtcNow >= deadline)
                {
                    throw new GuestImageBuildException($"another process has been building the guest image for 15 minutes (lock {path} is held)", e);
                }

                if (!told)
                {
                    progress?.Report($"waiting for another process building the guest image ({path})");
                    told = true;
                }

                Thread.Sleep(500);
            }
        }
    }

    private static bool SizeIs(string path, long size)
    {
        var info = new FileInfo(path);
        return info.Exists && info.Length == size && size > 0;
    }

    private static void TryDeleteDirectory(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (IOException)
        {
            // Scratch space only; a leftover build-* directory is harmless.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
