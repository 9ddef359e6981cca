// Builds the default guest image from Debian packages into a work directory:
//  1. resolve the kernel package linux-image-cloud-amd64 depends on (apt-cache depends; apt-get update first only
//     when apt knows nothing about it), apt-get download it and busybox-static;
//  2. dpkg-deb -x both; take /boot/vmlinuz-* and /lib/modules/<release>/;
//  3. resolve the virtio (and ext4) modules with their dependencies, dependencies first;
//  4. write a gzip-compressed newc initramfs: busybox, /init, device nodes, the modules.
// Every external-tool failure becomes one GuestImageBuildException naming the step.
using System.IO.Compression;
using System.Text;
using Ringvisor.Core.Hashing;

namespace Ringvisor.Machine.Images;

internal static class GuestImageBuilder
{
    public const string KernelMetaPackage = "linux-image-cloud-amd64";
    public const string BusyboxPackage = "busybox-static";
    public const string KernelFileName = "vmlinuz";
    public const string InitrdFileName = "initramfs.img";
    public const string VmlinuxFileName = "vmlinux";

    /// <summary>
    /// Drivers the guest needs for Ringvisor's devices; with their dependencies these go into the initramfs unless
    /// the kernel has them built in (Debian 12's cloud kernel builds in ext4, jbd2, mbcache, crc16, crc32c and
    /// rng-core but ships every virtio driver as a module).
    /// </summary>
    public static readonly IReadOnlyList<string> WantedModules =
        ["virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "virtio_rng", "ext4"];

    // Linux device numbers (Documentation/admin-guide/devices.txt).
    private const uint MemMajor = 1, NullMinor = 3;        // /dev/null
    private const uint TtyMajor = 4, TtyS0Minor = 64;      // /dev/ttyS0: first 8250 UART
    private const uint TtyAuxMajor = 5, ConsoleMinor = 1;  // /dev/console

    private static readonly TimeSpan s_aptUpdateTimeout = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan s_downloadTimeout = TimeSpan.FromMinutes(10);

    /// <summary>Builds vmlinuz, initramfs.img and (when extractable) vmlinux into <paramref name="outputDirectory"/> using <paramref name="workDirectory"/> for scratch.</summary>
    public static GuestImageManifest Build(string workDirectory, string outputDirectory, string commandLine, IProgress<string>? progress)
    {
        Directory.CreateDirectory(workDirectory);
        Directory.CreateDirectory(outputDirectory);

        string kernelPackage = ResolveKernelPackage(progress);
        string debs = Path.Combine(workDirectory, "debs");
        Directory.CreateDirectory(debs);
        progress?.Report($"downloading {kernelPackage} and {BusyboxPackage}");
        var download = DownloadArguments(kernelPackage);
        var result = ExternalTool.TryRun("apt-get", download, debs, s_downloadTimeout);
        if (result.ExitCode != 0 && Environment.IsPrivilegedProcess)
        {
            // Old package lists name versions the mirror has since dropped (404): refresh them once and retry,
            // which may also move the kernel to a newer ABI.
            progress?.Report("download failed; refreshing apt's package lists and retrying");
            _ = ExternalTool.TryRun("apt-get", ["-q", "-o", "DPkg::Lock::Timeout=120", "update"], timeout: s_aptUpdateTimeout);
            kernelPackage = ResolveKernelPackage(progress);
            download = DownloadArguments(kernelPackage);
            result = ExternalTool.TryRun("apt-get", download, debs, s_downloadTimeout);
        }

        if (result.ExitCode != 0)
        {
            throw new GuestImageBuildException(ExternalTool.Describe(
                $"download {kernelPackage} and {BusyboxPackage} from the Debian mirror", "apt-get", download, result));
        }

        string kernelDeb = FindDeb(debs, kernelPackage);
        string busyboxDeb = FindDeb(debs, BusyboxPackage);
        string kernelVersionField = DebVersion(kernelDeb);
        string busyboxVersionField = DebVersion(busyboxDeb);

        progress?.Report("unpacking packages");
        string kernelRoot = Path.Combine(workDirectory, "kernel");
        string busyboxRoot = Path.Combine(workDirectory, "busybox");
        ExternalTool.Run($"unpack {Path.GetFileName(kernelDeb)}", "dpkg-deb", ["-x", kernelDeb, kernelRoot]);
        ExternalTool.Run($"unpack {Path.GetFileName(busyboxDeb)}", "dpkg-deb", ["-x", busyboxDeb, busyboxRoot]);

        string moduleDirectory = FindModuleDirectory(kernelRoot, kernelPackage);
        string release = Path.GetFileName(moduleDirectory);
        string vmlinuz = Path.Combine(kernelRoot, "boot", $"vmlinuz-{release}");
        if (!File.Exists(vmlinuz))
        {
            throw new GuestImageBuildException($"{kernelPackage} has modules for {release} but no /boot/vmlinuz-{release}");
        }

        if (!ImageFileChecks.IsBzImage(vmlinuz))
        {
            throw new GuestImageBuildException($"{vmlinuz} is not a bzImage (no \"HdrS\" boot header)");
        }

        string busybox = Path.Combine(busyboxRoot, "bin", "busybox");
        if (!File.Exists(busybox))
        {
            throw new GuestImageBuildException($"{BusyboxPackage} does not contain /bin/busybox");
        }

        progress?.Report($"resolving modules of {release}");
        ModuleLoadPlan plan;
        try
        {
            plan = KernelModuleGraph.FromModuleDirectory(moduleDirectory).Resolve(WantedModules);
        }
        catch (InvalidDataException e)
        {
            throw new GuestImageBuildException($"cannot read the module metadata of {kernelPackage}: {e.Message}", e);
        }

        if (plan.Missing.Count > 0)
        {
            throw new GuestImageBuildException(
                $"{kernelPackage} has neither a module nor a built-in driver for: {string.Join(", ", plan.Missing)}");
        }

        progress?.Report($"writing initramfs ({plan.LoadOrder.Count} modules: {string.Join(' ', plan.LoadOrder.Select(m => m.Name))})");
        string moduleGuestRoot = $"/lib/modules/{release}";
        var modules = plan.LoadOrder
            .Select(m => new ManifestModule(m.Name, $"{moduleGuestRoot}/{ModuleFile.PlainName(m.RelativePath)}"))
            .ToList();
        string init = InitScript.Generate(modules.Select(m => m.GuestPath).ToList());

        string kernelOut = Path.Combine(outputDirectory, KernelFileName);
        string initrdOut = Path.Combine(outputDirectory, InitrdFileName);
        File.Copy(vmlinuz, kernelOut, overwrite: true);
        long? vmlinuxSize = ExtractVmlinux(kernelOut, Path.Combine(outputDirectory, VmlinuxFileName), progress);
        using (var file = new FileStream(initrdOut, FileMode.Create, FileAccess.Write))
        using (var gzip = new GZipStream(file, CompressionLevel.SmallestSize))
        using (var cpio = new CpioNewcWriter(gzip))
        {
            WriteInitramfs(cpio, busybox, init, moduleDirectory, moduleGuestRoot, plan);
        }

        return new GuestImageManifest
        {
            FormatVersion = DefaultGuestImage.FormatVersion,
            KernelVersion = release,
            KernelPackage = kernelPackage,
            KernelPackageVersion = kernelVersionField,
            BusyboxPackage = BusyboxPackage,
            BusyboxPackageVersion = busyboxVersionField,
            Modules = modules,
            BuiltInModules = plan.BuiltIn,
            KernelSize = new FileInfo(kernelOut).Length,
            InitrdSize = new FileInfo(initrdOut).Length,
            VmlinuxSize = vmlinuxSize,
            InitSha256 = Sha256Hex(init),
            DefaultCommandLine = commandLine,
            BuildTimeUtc = DateTimeOffset.UtcNow,
        };
    }

    /// <summary>Writes the uncompressed kernel next to the bzImage; it is an optional extra, so failure is reported, not fatal.</summary>
    private static long? ExtractVmlinux(string bzImage, string vmlinuxOut, IProgress<string>? progress)
    {
        try
        {
            byte[] vmlinux = BzImagePayload.ExtractVmlinux(File.ReadAllBytes(bzImage));
            File.WriteAllBytes(vmlinuxOut, vmlinux);
            return vmlinux.Length;
        }
        catch (Exception e) when (e is InvalidDataException or GuestImageBuildException)
        {
            progress?.Report($"no vmlinux extracted (the image still boots from the bzImage): {e.Message}");
            return null;
        }
    }

    internal static string Sha256Hex(string text) => Convert.ToHexStringLower(Sha256.HashData(Encoding.UTF8.GetBytes(text)));

    private static void WriteInitramfs(CpioNewcWriter cpio, string busybox, string init, string moduleDirectory, string moduleGuestRoot, ModuleLoadPlan plan)
    {
        foreach (string dir in new[] { "bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "run", "mnt", "etc" })
        {
            cpio.AddDirectory(dir);
        }

        cpio.AddDirectory("tmp", 0x3FF);  // 01777: world-writable, sticky
        cpio.AddDirectory("root", 0x1C0); // 0700

        // Needed before devtmpfs is mounted: the kernel opens /dev/console as PID 1's stdin/stdout/stderr.
        cpio.AddCharacterDevice("dev/console", TtyAuxMajor, ConsoleMinor, 0x180 /* 0600 */);
        cpio.AddCharacterDevice("dev/ttyS0", TtyMajor, TtyS0Minor, 0x1B0 /* 0660 */);
        cpio.AddCharacterDevice("dev/null", MemMajor, NullMinor, 0x1B6 /* 0666 */);

        cpio.AddFile("bin/busybox", File.ReadAllBytes(busybox), 0x1ED /* 0755 */);
        cpio.AddSymlink("bin/sh", "busybox");
        cpio.AddFile("init", Encoding.UTF8.GetBytes(init), 0x1ED);
        cpio.AddFile("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"u8, 0x1A4);
        cpio.AddFile("etc/group", "root:x:0:\n"u8, 0x1A4);

        // modules.dep for the modules we carry, so busybox modprobe works in the guest too.
        var dep = new StringBuilder();
        var byName = plan.LoadOrder.ToDictionary(m => m.Name, StringComparer.Ordinal);
        foreach (var m in plan.LoadOrder)
        {
            byte[] ko = ModuleFile.ReadAllBytes(Path.Combine(moduleDirectory, m.RelativePath));
            string plainPath = ModuleFile.PlainName(m.RelativePath);
            cpio.AddFile($"{moduleGuestRoot}/{plainPath}", ko, 0x1A4);
            dep.Append(plainPath).Append(':');
            foreach (string d in m.Depends)
            {
                if (byName.TryGetValue(d, out var dm))
                {
                    dep.Append(' ').Append(ModuleFile.PlainName(dm.RelativePath));
                }
            }

            dep.Append('\n');
        }

        cpio.AddFile($"{moduleGuestRoot}/modules.dep", Encoding.UTF8.GetBytes(dep.ToString()), 0x1A4);
    }

    private static List<string> DownloadArguments(string kernelPackage)
    {
        var args = new List<string>();
        if (Environment.IsPrivilegedProcess)
        {
            // apt drops to the _apt user to download; that user cannot write into a root-owned scratch directory.
            args.AddRange(["-o", "APT::Sandbox::User=root"]);
        }

        args.AddRange(["-q", "download", kernelPackage, BusyboxPackage]);
        return args;
    }

    private static string ResolveKernelPackage(IProgress<string>? progress)
    {
        progress?.Report($"resolving {KernelMetaPackage}");
        string? package = TryResolveKernelPackage();
        if (package is not null)
        {
            return package;
        }

        if (!Environment.IsPrivilegedProcess)
        {
            throw new GuestImageBuildException(
                $"apt does not know the package {KernelMetaPackage}; run 'apt-get update' as root (or scripts/install-deps.sh) first");
        }

        progress?.Report("apt-get update (apt knows nothing about the kernel package yet)");
        var update = ExternalTool.TryRun("apt-get", ["-q", "-o", "DPkg::Lock::Timeout=120", "update"], timeout: s_aptUpdateTimeout);

        // A third-party source that cannot be reached makes apt-get update fail although Debian's own lists arrived,
        // so the exit status alone does not decide; whether the package now resolves does.
        return TryResolveKernelPackage() ?? throw new GuestImageBuildException(
            ExternalTool.Describe($"find {KernelMetaPackage} after updating apt's package lists (is the Debian mirror reachable?)",
                "apt-get", ["update"], update));
    }

    /// <summary>Parses "apt-cache depends linux-image-cloud-amd64": "  Depends: linux-image-6.1.0-56-cloud-amd64".</summary>
    internal static string? ParseKernelDependency(string aptCacheDependsOutput)
    {
        foreach (string raw in aptCacheDependsOutput.Split('\n'))
        {
            string line = raw.Trim().TrimStart('|'); // '|' marks alternatives
            const string Prefix = "Depends:";
            if (!line.StartsWith(Prefix, StringComparison.Ordinal))
            {
                continue;
            }

            string target = line[Prefix.Length..].Trim().Trim('<', '>');
            if (target.StartsWith("linux-image-", StringComparison.Ordinal))
            {
                return target;
            }
        }

        return null;
    }

    private static string? TryResolveKernelPackage()
    {
        var result = ExternalTool.TryRun("apt-cache", ["depends", KernelMetaPackage]);
        return result.ExitCode == 0 ? ParseKernelDependency(result.StandardOutput) : null;
    }

    private static string FindDeb(string directory, string package)
    {
        var found = Directory.GetFiles(directory, $"{package}_*.deb");
        return found.Length == 1
            ? found[0]
            : throw new GuestImageBuildException($"apt-get download did not leave exactly one {package}_*.deb in {directory} (found {found.Length})");
    }

    private static string DebVersion(string deb) =>
        ExternalTool.Run($"read the version of {Path.GetFileName(deb)}", "dpkg-deb", ["-f", deb, "Version"]).Trim();

    private static string FindModuleDirectory(string kernelRoot, string kernelPackage)
    {
        // Debian 12 ships /lib/modules; merged-/usr layouts (Debian 13) ship /usr/lib/modules.
        foreach (string parent in new[] { Path.Combine(kernelRoot, "lib", "modules"), Path.Combine(kernelRoot, "usr", "lib", "modules") })
        {
            if (Directory.Exists(parent))
            {
                var releases = Directory.GetDirectories(parent);
                if (releases.Length == 1)
                {
                    return releases[0];
                }

                throw new GuestImageBuildException($"{kernelPackage} has {releases.Length} module directories under {parent}; expected one");
            }
        }

        throw new GuestImageBuildException($"{kernelPackage} contains no /lib/modules directory");
    }
}
