using System.Text;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

public sealed class DefaultGuestImageTests
{
    [Fact]
    public void ResolveCacheDirectory_RingvisorCacheSet_WinsOverXdg()
    {
        var env = new Dictionary<string, string?> { ["RINGVISOR_CACHE"] = "/srv/rv", ["XDG_CACHE_HOME"] = "/x" };

        Assert.Equal("/srv/rv", DefaultGuestImage.ResolveCacheDirectory(k => env.GetValueOrDefault(k), "/home/u"));
    }

    [Fact]
    public void ResolveCacheDirectory_XdgSet_UsesRingvisorUnderIt()
    {
        var env = new Dictionary<string, string?> { ["XDG_CACHE_HOME"] = "/x/cache" };

        Assert.Equal("/x/cache/ringvisor", DefaultGuestImage.ResolveCacheDirectory(k => env.GetValueOrDefault(k), "/home/u"));
    }

    [Fact]
    public void ResolveCacheDirectory_NothingOrRelativeXdg_UsesHomeDotCache()
    {
        Assert.Equal("/home/u/.cache/ringvisor", DefaultGuestImage.ResolveCacheDirectory(_ => null, "/home/u"));
        Assert.Equal("/home/u/.cache/ringvisor", DefaultGuestImage.ResolveCacheDirectory(k => k == "XDG_CACHE_HOME" ? "rel" : null, "/home/u"));
    }

    [Fact]
    public void TryGetCached_EmptyDirectory_ReturnsNull()
    {
        string dir = Directory.CreateTempSubdirectory("rv-cache-").FullName;
        try
        {
            Assert.Null(DefaultGuestImage.TryGetCached(dir));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [DebianFact]
    public void EnsureBuilt_DefaultCache_KernelHasHdrSAndInitramfsHoldsBusyboxInitAndModules()
    {
        var image = DefaultGuestImage.EnsureBuilt(null);

        byte[] kernel = File.ReadAllBytes(image.Kernel);
        Assert.Equal("HdrS", Encoding.ASCII.GetString(kernel, 0x202, 4)); // Linux x86 boot protocol setup header magic
        byte[] initrd = File.ReadAllBytes(image.Initrd);
        Assert.Equal([0x1F, 0x8B], initrd[..2]); // gzip
        var entries = CpioTestReader.ReadGzip(image.Initrd).ToDictionary(e => e.Name);
        Assert.Equal(0x8000u, entries["bin/busybox"].Mode & 0xF000);
        Assert.Equal([0x7F, (byte)'E', (byte)'L', (byte)'F'], entries["bin/busybox"].Data[..4]);
        Assert.Equal(0x8000u | 0x1ED, entries["init"].Mode);
        Assert.Equal((0x2000u, 5u, 1u), (entries["dev/console"].Mode & 0xF000, entries["dev/console"].RdevMajor, entries["dev/console"].RdevMinor));
        Assert.Equal((0x2000u, 4u, 64u), (entries["dev/ttyS0"].Mode & 0xF000, entries["dev/ttyS0"].RdevMajor, entries["dev/ttyS0"].RdevMinor));

        var manifest = DefaultGuestImage.TryGetManifest();
        Assert.NotNull(manifest);
        Assert.Equal(image.KernelVersion, manifest.KernelVersion);
        Assert.StartsWith("console=ttyS0", image.DefaultCommandLine, StringComparison.Ordinal);

        // Every module the init script loads is in the archive, and it loads them in the manifest's order.
        string init = Encoding.UTF8.GetString(entries["init"].Data);
        var loads = init.Split('\n').Where(l => l.StartsWith("rv_insmod \"", StringComparison.Ordinal)).Select(l => l[11..^1]).ToList();
        Assert.Equal(manifest.Modules.Select(m => m.GuestPath), loads);
        Assert.All(loads, p => Assert.True(entries.ContainsKey(p.TrimStart('/')), $"{p} missing from the initramfs"));
        Assert.Contains(manifest.Modules, m => m.Name == "virtio_pci");
        Assert.Contains(manifest.Modules, m => m.Name == "virtio_net");
        Assert.True(
            manifest.Modules.ToList().FindIndex(m => m.Name == "virtio") < manifest.Modules.ToList().FindIndex(m => m.Name == "virtio_blk"),
            "virtio must load before virtio_blk");
        Assert.Contains(InitScript.ReadyLine, init, StringComparison.Ordinal);
    }

    [DebianFact]
    public void EnsureBuilt_DefaultCache_VmlinuxIsTheSameKernelUncompressed()
    {
        var image = DefaultGuestImage.EnsureBuilt(null);

        Assert.NotNull(image.Vmlinux);
        byte[] vmlinux = File.ReadAllBytes(image.Vmlinux);
        Assert.Equal([0x7F, (byte)'E', (byte)'L', (byte)'F', 2], vmlinux[..5]);   // ELF64
        Assert.Equal(62, BitConverter.ToUInt16(vmlinux, 0x12));                   // EM_X86_64
        Assert.True(vmlinux.Length > new FileInfo(image.Kernel).Length, "vmlinux should be larger than the compressed bzImage");

        // The kernel's banner names its release; it is only readable once the payload is decompressed.
        byte[] banner = Encoding.ASCII.GetBytes($"Linux version {image.KernelVersion} ");
        Assert.True(vmlinux.AsSpan().IndexOf(banner) >= 0, "linux_banner not found in vmlinux");
    }

    [DebianFact]
    public void EnsureBuilt_CachedImageLosesInitrd_RebuildsIt()
    {
        var source = DefaultGuestImage.EnsureBuilt(null);
        string cache = Directory.CreateTempSubdirectory("rv-cache-").FullName;
        try
        {
            // Seed a private cache with a copy of the built image, then damage it.
            string dir = Path.Combine(cache, "default");
            Directory.CreateDirectory(dir);
            foreach (string f in Directory.GetFiles(Path.GetDirectoryName(source.Kernel)!))
            {
                File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            }

            Assert.NotNull(DefaultGuestImage.TryGetCached(cache));
            File.Delete(Path.Combine(dir, "initramfs.img"));
            Assert.Null(DefaultGuestImage.TryGetCached(cache));

            var messages = new List<string>();
            var rebuilt = DefaultGuestImage.EnsureBuilt(cache, new SynchronousProgress(messages), force: false);

            Assert.True(File.Exists(rebuilt.Initrd));
            Assert.NotNull(DefaultGuestImage.TryGetCached(cache));
            Assert.Contains(messages, m => m.StartsWith("downloading", StringComparison.Ordinal));
            Assert.Empty(Directory.GetDirectories(cache, "build-*")); // scratch space removed
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }

    [DebianFact]
    public void TryGetCached_TruncatedKernelOrBadManifest_ReturnsNull()
    {
        var source = DefaultGuestImage.EnsureBuilt(null);
        string cache = Directory.CreateTempSubdirectory("rv-cache-").FullName;
        try
        {
            string dir = Path.Combine(cache, "default");
            Directory.CreateDirectory(dir);
            foreach (string f in Directory.GetFiles(Path.GetDirectoryName(source.Kernel)!))
            {
                File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            }

            string kernel = Path.Combine(dir, "vmlinuz");
            using (var fs = new FileStream(kernel, FileMode.Open))
            {
                fs.SetLength(fs.Length / 2); // an interrupted copy
            }

            Assert.Null(DefaultGuestImage.TryGetCached(cache));
            File.Copy(source.Kernel, kernel, overwrite: true);
            Assert.NotNull(DefaultGuestImage.TryGetCached(cache));
            File.WriteAllText(Path.Combine(dir, "manifest.json"), "{ not json");
            Assert.Null(DefaultGuestImage.TryGetCached(cache));
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }

    /// <summary>Progress&lt;T&gt; posts to the thread pool; tests need the messages synchronously.</summary>
    private sealed class SynchronousProgress(List<string> messages) : IProgress<string>
    {
        public void Report(string value)
        {
            lock (messages)
            {
                messages.Add(value);
            }
        }
    }
}
