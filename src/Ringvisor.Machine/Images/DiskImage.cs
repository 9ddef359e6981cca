// Raw disk image files for virtio-blk. CreateExt4 formats a file with mkfs.ext4 (e2fsprogs) and populates it from
// a staging directory with "-d", so no loop mount or root privilege is needed.
using System.Text;

namespace Ringvisor.Machine.Images;

public static class DiskImage
{
    /// <summary>Smallest image CreateExt4 accepts: mke2fs needs room for its superblock, group tables and journal.</summary>
    public const int MinimumExt4SizeMiB = 4;

    /// <summary>Largest image CreateExt4 accepts (a sanity bound; the file is sparse).</summary>
    public const int MaximumExt4SizeMiB = 1 << 20;

    private const uint ExecutableMode = 0x1ED; // 0755
    private const uint RegularMode = 0x1A4;    // 0644

    /// <summary>
    /// Creates (or replaces) <paramref name="path"/> as a sparse raw image of <paramref name="sizeMiB"/> MiB holding
    /// an ext4 file system with <paramref name="files"/>. Keys are relative paths ("bin/test.sh"); parent
    /// directories are created. Files that start with "#!" are made executable (0755), others are 0644. Inode
    /// tables and the journal are initialised on the host so the guest kernel has no background zeroing to do.
    /// </summary>
    /// <exception cref="ArgumentException">A file name is absolute, empty or leaves the root with "..".</exception>
    /// <exception cref="GuestImageBuildException">mkfs.ext4 is missing or fails.</exception>
    public static void CreateExt4(string path, int sizeMiB, IReadOnlyDictionary<string, byte[]>? files)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(sizeMiB, MinimumExt4SizeMiB);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(sizeMiB, MaximumExt4SizeMiB);

        string fullPath = Path.GetFullPath(path);
        string? parent = Path.GetDirectoryName(fullPath);
        if (parent is not null)
        {
            Directory.CreateDirectory(parent);
        }

        string staging = Path.Combine(Path.GetTempPath(), $"ringvisor-ext4-{Environment.ProcessId}-{Guid.NewGuid():N}");
        string tmpImage = fullPath + $".tmp-{Guid.NewGuid():N}";
        try
        {
            Directory.CreateDirectory(staging);
            if (files is not null)
            {
                foreach (var (name, data) in files)
                {
                    StageFile(staging, name, data);
                }
            }

            using (var f = new FileStream(tmpImage, FileMode.CreateNew, FileAccess.Write))
            {
                f.SetLength((long)sizeMiB << 20);
            }

            ExternalTool.Run($"create the ext4 image {fullPath}", "mkfs.ext4",
            [
                "-q", "-F",
                "-m", "0",                 // no blocks reserved for root: it is a data disk
                "-L", "ringvisor",
                "-E", "lazy_itable_init=0,lazy_journal_init=0",
                "-d", staging,
                tmpImage,
            ]);
            File.Move(tmpImage, fullPath, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmpImage))
            {
                File.Delete(tmpImage);
            }

            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
        }
    }

    private static void StageFile(string staging, string name, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (string.IsNullOrEmpty(name) || name.StartsWith('/') || name.Contains('\0', StringComparison.Ordinal) ||
            name.Split('/').Any(p => p.Length == 0 || p == "." || p == ".."))
        {
            throw new ArgumentException($"disk image file name '{name}' must be a relative path without empty, '.' or '..' parts", nameof(name));
        }

        string target = Path.Combine(staging, name);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.WriteAllBytes(target, data);
        bool script = data.AsSpan().StartsWith("#!"u8);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(target, (UnixFileMode)(script ? ExecutableMode : RegularMode));
        }
    }

    /// <summary>UTF-8 bytes of a text file for <see cref="CreateExt4"/>, with Unix line endings.</summary>
    public static byte[] TextFile(string text) => Encoding.UTF8.GetBytes(text.ReplaceLineEndings("\n"));
}
