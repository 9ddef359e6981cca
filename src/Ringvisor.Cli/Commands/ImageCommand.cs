// `ringvisor image build|path`: the default guest (Debian cloud kernel + busybox initramfs), cached per user.
using System.CommandLine;
using Ringvisor.Machine.Images;

namespace Ringvisor.Cli.Commands;

internal static class ImageCommand
{
    public static Command Create()
    {
        var force = new Option<bool>("--force") { Description = "Rebuild even when a cached image exists." };
        var build = new Command("build", "Build the default guest image from Debian's packages (cached).") { force };
        build.SetAction(pr =>
        {
            try
            {
                var img = DefaultGuestImage.EnsureBuilt(StderrProgress.Instance, pr.GetValue(force));
                Console.WriteLine($"kernel  {img.Kernel}");
                Console.WriteLine($"initrd  {img.Initrd}");
                Console.WriteLine($"version {img.KernelVersion}");
                return 0;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return CliApp.Fail($"cannot build the default guest image: {e.Message}");
            }
        });

        var path = new Command("path", "Print the cached default guest image's files (exit 1 when not built).");
        path.SetAction(_ =>
        {
            var img = DefaultGuestImage.TryGetCached();
            if (img is null)
            {
                return CliApp.Fail("the default guest image is not built yet; run: ./ringvisor image build");
            }

            Console.WriteLine(img.Kernel);
            Console.WriteLine(img.Initrd);
            return 0;
        });

        var diskPath = new Argument<string>("PATH") { Description = "Image file to create." };
        var size = new Option<int>("--size") { Description = "Size in MiB.", DefaultValueFactory = _ => 64 };
        var from = new Option<string?>("--from") { Description = "Directory whose files are copied into the file system." };
        var disk = new Command("disk", "Create an ext4 disk image (mkfs.ext4) for --disk.") { diskPath, size, from };
        disk.SetAction(pr =>
        {
            string target = pr.GetValue(diskPath)!;
            int mib = pr.GetValue(size);
            if (mib < 1 || mib > 1 << 20)
            {
                return CliApp.Fail($"--size must be between 1 and {1 << 20} MiB");
            }

            if (File.Exists(target))
            {
                return CliApp.Fail($"{target}: already exists; not overwriting");
            }

            try
            {
                Dictionary<string, byte[]>? files = null;
                if (pr.GetValue(from) is { } dir)
                {
                    if (!Directory.Exists(dir))
                    {
                        return CliApp.Fail($"{dir}: no such directory");
                    }

                    files = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
                        .ToDictionary(f => Path.GetRelativePath(dir, f), File.ReadAllBytes);
                }

                DiskImage.CreateExt4(target, mib, files);
                Console.WriteLine(target);
                return 0;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return CliApp.Fail($"{target}: {e.Message}");
            }
        });

        return new Command("image", "Manage guest images.") { build, path, disk };
    }
}
