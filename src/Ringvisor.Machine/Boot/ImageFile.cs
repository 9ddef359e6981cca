// Reading boot files with every host I/O failure turned into a one-line BootImageException.
using Ringvisor.Core.Memory;

namespace Ringvisor.Machine.Boot;

internal static class ImageFile
{
    /// <summary>Reads a whole kernel image; refuses files larger than <paramref name="maxBytes"/>.</summary>
    public static byte[] ReadAll(string path, ulong maxBytes)
    {
        long length = Length(path);
        if ((ulong)length > maxBytes || length > Array.MaxLength)
        {
            throw new BootImageException(path, $"image of {length} bytes is larger than guest RAM ({maxBytes} bytes)");
        }

        try
        {
            byte[] data = File.ReadAllBytes(path);
            if (data.Length != length)
            {
                throw new BootImageException(path, $"file changed size while being read ({length} then {data.Length} bytes)");
            }

            return data;
        }
        catch (Exception e) when (IsFileError(e))
        {
            throw new BootImageException(path, $"cannot read: {e.Message}", e);
        }
    }

    /// <summary>The size of a file that must exist and be a regular file.</summary>
    public static long Length(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                throw new BootImageException(path, "is a directory, not a file");
            }

            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw new BootImageException(path, "no such file");
            }

            return info.Length;
        }
        catch (Exception e) when (IsFileError(e))
        {
            throw new BootImageException(path, $"cannot access: {e.Message}", e);
        }
    }

    /// <summary>Streams a file of <paramref name="expectedLength"/> bytes into guest RAM at <paramref name="gpa"/>.</summary>
    public static void CopyToGuest(string path, long expectedLength, BootMemoryPlan plan, ulong gpa)
    {
        const int Chunk = 1 << 20;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
            long done = 0;
            while (done < expectedLength)
            {
                int want = (int)Math.Min(Chunk, expectedLength - done);
                var span = plan.WritableSpan(gpa + (ulong)done, want);
                int n = stream.Read(span);
                if (n == 0)
                {
                    throw new BootImageException(path, $"file shrank while being read ({expectedLength} bytes expected, {done} read)");
                }

                done += n;
            }

            if (stream.ReadByte() >= 0)
            {
                throw new BootImageException(path, $"file grew while being read (more than {expectedLength} bytes)");
            }
        }
        catch (Exception e) when (IsFileError(e))
        {
            throw new BootImageException(path, $"cannot read: {e.Message}", e);
        }
    }

    public static ulong AlignUp(ulong value, ulong alignment) => (value + alignment - 1) & ~(alignment - 1);

    public static ulong AlignDown(ulong value, ulong alignment) => value & ~(alignment - 1);

    public static ulong PageAlignUp(ulong value) => AlignUp(value, MemoryLayout.PageSize);

    private static bool IsFileError(Exception e) =>
        e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException or System.Security.SecurityException;
}
