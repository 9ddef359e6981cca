// Writes a cpio archive in the "newc" (SVR4 without CRC) format, the format the Linux kernel unpacks as an
// initramfs (Documentation/driver-api/early-userspace/buffer-format.rst). Each entry is a 110-byte ASCII header
// ("070701" + 13 eight-digit hex fields), the NUL-terminated name padded to a multiple of 4 bytes (counting the
// header), then the data padded to a multiple of 4. The archive ends with an entry named "TRAILER!!!".
// Parent directories are emitted automatically before their first child, because the kernel's unpacker does not
// create missing parents (init/initramfs.c).
using System.Globalization;
using System.Text;

namespace Ringvisor.Machine.Images;

public sealed class CpioNewcWriter : IDisposable
{
    // cpio(5) "New ASCII Format": magic, then ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
    // rdevmajor, rdevminor, namesize, check — each 8 hex digits.
    private const string Magic = "070701";
    private const int HeaderLength = 110;
    private const string TrailerName = "TRAILER!!!";

    // File type bits of st_mode (POSIX <sys/stat.h>, Linux values).
    internal const uint ModeFifo = 0x1000;       // S_IFIFO  0010000
    internal const uint ModeCharDevice = 0x2000; // S_IFCHR  0020000
    internal const uint ModeDirectory = 0x4000;  // S_IFDIR  0040000
    internal const uint ModeBlockDevice = 0x6000; // S_IFBLK 0060000
    internal const uint ModeRegular = 0x8000;    // S_IFREG  0100000
    internal const uint ModeSymlink = 0xA000;    // S_IFLNK  0120000
    private const uint PermissionMask = 0xFFF;   // rwx bits plus setuid/setgid/sticky

    private readonly Stream _output;
    private readonly bool _leaveOpen;
    private readonly uint _mtime;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly HashSet<string> _directories = new(StringComparer.Ordinal);
    private uint _nextInode = 1;
    private long _position;
    private bool _finished;

    /// <param name="output">Where the archive goes (written sequentially; need not be seekable).</param>
    /// <param name="modificationTime">Seconds since the Unix epoch stamped on every entry (0 keeps output reproducible).</param>
    /// <param name="leaveOpen">Leave <paramref name="output"/> open on dispose.</param>
    public CpioNewcWriter(Stream output, uint modificationTime = 0, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = output;
        _mtime = modificationTime;
        _leaveOpen = leaveOpen;
    }

    /// <summary>Bytes written so far.</summary>
    public long Length => _position;

    /// <summary>Adds a directory (and any missing parents). Adding an existing directory again is a no-op.</summary>
    public void AddDirectory(string path, uint permissions = 0x1ED /* 0755 */)
    {
        string name = NormalizePath(path);
        if (_directories.Contains(name))
        {
            return;
        }

        EnsureParents(name);
        WriteEntry(name, ModeDirectory | (permissions & PermissionMask), nlink: 2, rdevMajor: 0, rdevMinor: 0, ReadOnlySpan<byte>.Empty);
        _directories.Add(name);
    }

    public void AddFile(string path, ReadOnlySpan<byte> data, uint permissions = 0x1A4 /* 0644 */)
    {
        string name = NormalizePath(path);
        EnsureParents(name);
        WriteEntry(name, ModeRegular | (permissions & PermissionMask), nlink: 1, rdevMajor: 0, rdevMinor: 0, data);
    }

    /// <summary>A symbolic link; the link target is the entry's data (cpio(5)).</summary>
    public void AddSymlink(string path, string target)
    {
        ArgumentException.ThrowIfNullOrEmpty(target);
        if (target.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("a symlink target cannot contain NUL", nameof(target));
        }

        string name = NormalizePath(path);
        EnsureParents(name);
        WriteEntry(name, ModeSymlink | 0x1FF /* 0777 */, nlink: 1, rdevMajor: 0, rdevMinor: 0, Encoding.UTF8.GetBytes(target));
    }

    /// <summary>A character device node, e.g. /dev/console (5,1) so the kernel can open the console before devtmpfs is mounted.</summary>
    public void AddCharacterDevice(string path, uint major, uint minor, uint permissions = 0x180 /* 0600 */)
    {
        string name = NormalizePath(path);
        EnsureParents(name);
        WriteEntry(name, ModeCharDevice | (permissions & PermissionMask), nlink: 1, major, minor, ReadOnlySpan<byte>.Empty);
    }

    public void AddBlockDevice(string path, uint major, uint minor, uint permissions = 0x180 /* 0600 */)
    {
        string name = NormalizePath(path);
        EnsureParents(name);
        WriteEntry(name, ModeBlockDevice | (permissions & PermissionMask), nlink: 1, major, minor, ReadOnlySpan<byte>.Empty);
    }

    /// <summary>Writes the trailer entry. Further additions throw.</summary>
    public void Finish()
    {
        if (_finished)
        {
            return;
        }

        // The trailer is an ordinary header with nlink 1 and every other numeric field zero.
        WriteHeaderAndName(TrailerName, inode: 0, mode: 0, nlink: 1, mtime: 0, fileSize: 0, rdevMajor: 0, rdevMinor: 0);
        _finished = true;
        _output.Flush();
    }

    public void Dispose()
    {
        Finish();
        if (!_leaveOpen)
        {
            _output.Dispose();
        }
    }

    /// <summary>Archive names are relative ("bin/busybox"); rejects names that could escape the root or break the format.</summary>
    internal static string NormalizePath(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string trimmed = path.Trim('/');
        if (trimmed.StartsWith("./", StringComparison.Ordinal))
        {
            trimmed = trimmed[2..];
        }

        if (trimmed.Length == 0)
        {
            throw new ArgumentException($"cpio entry name '{path}' is empty", nameof(path));
        }

        foreach (string part in trimmed.Split('/'))
        {
            if (part.Length == 0 || part == "." || part == ".." || part.Contains('\0', StringComparison.Ordinal))
            {
                throw new ArgumentException($"cpio entry name '{path}' has an empty, '.', '..' or NUL component", nameof(path));
            }
        }

        if (trimmed == TrailerName)
        {
            throw new ArgumentException($"'{TrailerName}' is reserved for the archive trailer", nameof(path));
        }

        return trimmed;
    }

    private void EnsureParents(string name)
    {
        int slash = name.LastIndexOf('/');
        if (slash > 0)
        {
            AddDirectory(name[..slash]);
        }
    }

    private void WriteEntry(string name, uint mode, uint nlink, uint rdevMajor, uint rdevMinor, ReadOnlySpan<byte> data)
    {
        if (_finished)
        {
            throw new InvalidOperationException("the cpio archive is already finished (trailer written)");
        }

        if (!_names.Add(name))
        {
            throw new ArgumentException($"cpio entry '{name}' was already added", nameof(name));
        }

        WriteHeaderAndName(name, _nextInode++, mode, nlink, _mtime, (uint)data.Length, rdevMajor, rdevMinor);
        _output.Write(data);
        _position += data.Length;
        WritePadding();
    }

    private void WriteHeaderAndName(string name, uint inode, uint mode, uint nlink, uint mtime, uint fileSize, uint rdevMajor, uint rdevMinor)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        var header = new StringBuilder(HeaderLength);
        header.Append(Magic);
        AppendHex(header, inode);
        AppendHex(header, mode);
        AppendHex(header, 0);               // uid: root
        AppendHex(header, 0);               // gid: root
        AppendHex(header, nlink);
        AppendHex(header, mtime);
        AppendHex(header, fileSize);
        AppendHex(header, 0);               // devmajor of the archived file system: irrelevant
        AppendHex(header, 0);               // devminor
        AppendHex(header, rdevMajor);
        AppendHex(header, rdevMinor);
        AppendHex(header, (uint)nameBytes.Length + 1); // namesize counts the terminating NUL
        AppendHex(header, 0);               // check: only used by the "070702" CRC format

        _output.Write(Encoding.ASCII.GetBytes(header.ToString()));
        _output.Write(nameBytes);
        _output.WriteByte(0);
        _position += HeaderLength + nameBytes.Length + 1;
        WritePadding();
    }

    private void WritePadding()
    {
        int pad = (int)((4 - (_position & 3)) & 3);
        if (pad > 0)
        {
            Span<byte> zeros = stackalloc byte[3];
            zeros.Clear();
            _output.Write(zeros[..pad]);
            _position += pad;
        }
    }

    private static void AppendHex(StringBuilder sb, uint value) => sb.Append(value.ToString("x8", CultureInfo.InvariantCulture));
}
