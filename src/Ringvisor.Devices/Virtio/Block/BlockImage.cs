// A raw disk image file: positional reads and writes, fsync for flushes, hole punching for discard and
// zero-range for write-zeroes. Opening takes an flock(2) lock — exclusive for writable images, shared for
// read-only ones — so two VMs never write one image. I/O errors come back as false (the device reports
// VIRTIO_BLK_S_IOERR); only opening throws.
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Ringvisor.Devices.Virtio.Block.Native;

namespace Ringvisor.Devices.Virtio.Block;

public sealed class BlockImage : IDisposable
{
    private const int ZeroChunk = 64 * 1024;

    private readonly SafeFileHandle _handle;
    private bool _zeroRangeUnsupported;
    private bool _punchHoleUnsupported;

    private BlockImage(string path, SafeFileHandle handle, bool readOnly, long length)
    {
        Path = path;
        _handle = handle;
        ReadOnly = readOnly;
        Length = length;
    }

    public string Path { get; }

    public bool ReadOnly { get; }

    /// <summary>Size of the image in bytes when it was opened.</summary>
    public long Length { get; }

    /// <summary>
    /// Opens and locks an image.
    /// </summary>
    /// <exception cref="IOException">The file is missing, unreadable, a directory, or locked by another process; the message names the file.</exception>
    public static BlockImage Open(string path, bool readOnly)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            throw new IOException($"disk image '{full}' cannot be opened: it is a directory");
        }

        int fd = FileNative.Open(full, (readOnly ? FileNative.ORdOnly : FileNative.ORdWr) | FileNative.OCloExec, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            string why = errno switch
            {
                FileNative.ENoEnt => "the file does not exist",
                FileNative.EAcces => readOnly ? "permission denied (cannot read it)" : "permission denied (cannot open it read-write; add ,readonly to use it read-only)",
                FileNative.ERoFs => "it is on a read-only file system (add ,readonly)",
                FileNative.EIsDir => "it is a directory",
                _ => $"open failed with errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})",
            };
            throw new IOException($"disk image '{full}' cannot be opened: {why}");
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            int op = (readOnly ? FileNative.LockSh : FileNative.LockEx) | FileNative.LockNb;
            int rc;
            do
            {
                rc = FileNative.Flock(fd, op);
            }
            while (rc < 0 && Marshal.GetLastPInvokeError() == FileNative.EIntr);

            if (rc < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw new IOException(errno == FileNative.EWouldBlock
                    ? $"disk image '{full}' is locked by another process (another VM is using it{(readOnly ? " read-write" : "")}); a writable image can be used by one VM at a time"
                    : $"disk image '{full}' cannot be locked: errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})");
            }

            long length = RandomAccess.GetLength(handle);
            return new BlockImage(full, handle, readOnly, length);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Reads at <paramref name="offset"/>; bytes past the end of the file read as zero.</summary>
    public bool Read(long offset, Span<byte> destination)
    {
        try
        {
            while (!destination.IsEmpty)
            {
                int n = RandomAccess.Read(_handle, destination, offset);
                if (n <= 0)
                {
                    destination.Clear();
                    break;
                }

                destination = destination[n..];
                offset += n;
            }

            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    public bool Write(long offset, ReadOnlySpan<byte> source)
    {
        if (ReadOnly)
        {
            return false;
        }

        try
        {
            RandomAccess.Write(_handle, source, offset);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>fsync(2): everything written so far survives a crash of the VMM or the host.</summary>
    public bool Flush()
    {
        if (ReadOnly)
        {
            return true;
        }

        return FileNative.Fsync((int)_handle.DangerousGetHandle()) == 0;
    }

    /// <summary>Deallocates a range (punch hole); the range reads as zeros afterwards.</summary>
    public bool Discard(long offset, long length)
    {
        if (ReadOnly)
        {
            return false;
        }

        bool unsupported = false;
        if (!_punchHoleUnsupported && Fallocate(FileNative.FallocPunchHole | FileNative.FallocKeepSize, offset, length, out unsupported))
        {
            return true;
        }

        _punchHoleUnsupported |= unsupported;

        // Discard is a hint, but we promise zeros after it (write_zeroes_may_unmap relies on the same path).
        return WriteZeroBytes(offset, length);
    }

    /// <summary>Makes a range read as zeros, by zero-range, by punching a hole (when allowed), or by writing zeros.</summary>
    public bool WriteZeroes(long offset, long length, bool mayUnmap)
    {
        if (ReadOnly)
        {
            return false;
        }

        bool unsupported = false;
        if (!_zeroRangeUnsupported && Fallocate(FileNative.FallocZeroRange | FileNative.FallocKeepSize, offset, length, out unsupported))
        {
            return true;
        }

        _zeroRangeUnsupported |= unsupported;
        unsupported = false;
        if (mayUnmap && !_punchHoleUnsupported && Fallocate(FileNative.FallocPunchHole | FileNative.FallocKeepSize, offset, length, out unsupported))
        {
            return true;
        }

        _punchHoleUnsupported |= unsupported;
        return WriteZeroBytes(offset, length);
    }

    public void Dispose() => _handle.Dispose(); // closing the descriptor releases the flock

    private bool Fallocate(int mode, long offset, long length, out bool unsupported)
    {
        int rc = FileNative.Fallocate((int)_handle.DangerousGetHandle(), mode, offset, length);
        unsupported = rc < 0 && Marshal.GetLastPInvokeError() == FileNative.EOpNotSupp;
        return rc == 0;
    }

    private bool WriteZeroBytes(long offset, long length)
    {
        var zeros = new byte[(int)Math.Min(ZeroChunk, Math.Max(length, 1))];
        while (length > 0)
        {
            int n = (int)Math.Min(zeros.Length, length);
            if (!Write(offset, zeros.AsSpan(0, n)))
            {
                return false;
            }

            offset += n;
            length -= n;
        }

        return true;
    }
}
