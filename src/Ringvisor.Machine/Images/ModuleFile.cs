// Kernel module files as packages ship them: plain ".ko", or compressed ".ko.xz" / ".ko.zst" / ".ko.gz"
// (CONFIG_MODULE_COMPRESS_*). Debian 12's 6.1 kernels ship plain .ko; later ones compress with xz. The initramfs
// always carries plain .ko, because busybox insmod cannot rely on in-kernel decompression (6.1 lacks
// CONFIG_MODULE_DECOMPRESS in Debian's build).
using System.IO.Compression;

namespace Ringvisor.Machine.Images;

internal static class ModuleFile
{
    private static readonly string[] s_suffixes = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"];

    public static bool IsModuleFileName(string path) => s_suffixes.Any(s => path.EndsWith(s, StringComparison.Ordinal));

    /// <summary>"kernel/x/virtio_net.ko.xz" → "kernel/x/virtio_net.ko".</summary>
    public static string PlainName(string path)
    {
        int ko = path.LastIndexOf(".ko", StringComparison.Ordinal);
        return ko > 0 ? path[..(ko + 3)] : path;
    }

    /// <summary>The module's ELF bytes, decompressed when the file is compressed.</summary>
    /// <exception cref="GuestImageBuildException">A needed decompressor is missing or fails.</exception>
    public static byte[] ReadAllBytes(string path)
    {
        if (path.EndsWith(".ko.xz", StringComparison.Ordinal))
        {
            return ExternalTool.RunBinary($"decompress {Path.GetFileName(path)}", "xz", ["-dc", "--", path]);
        }

        if (path.EndsWith(".ko.zst", StringComparison.Ordinal))
        {
            return ExternalTool.RunBinary($"decompress {Path.GetFileName(path)}", "zstd", ["-dcq", "--", path]);
        }

        if (path.EndsWith(".ko.gz", StringComparison.Ordinal))
        {
            using var input = File.OpenRead(path);
            using var gz = new GZipStream(input, CompressionMode.Decompress);
            using var ms = new MemoryStream();
            gz.CopyTo(ms);
            return ms.ToArray();
        }

        return File.ReadAllBytes(path);
    }
}
