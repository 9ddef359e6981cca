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

        return new Command("image", "Manage guest images.") { build, path };
    }
}
