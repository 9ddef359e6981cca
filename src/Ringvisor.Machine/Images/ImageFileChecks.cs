// Cheap format checks on image files, used to tell a complete cached image from a damaged one.
namespace Ringvisor.Machine.Images;

internal static class ImageFileChecks
{
    // Linux x86 boot protocol (Documentation/arch/x86/boot.rst): the setup header's "header" field at 0x202
    // holds the magic "HdrS" from protocol 2.00 on.
    public const int BootHeaderMagicOffset = 0x202;
    private static ReadOnlySpan<byte> BootHeaderMagic => "HdrS"u8;

    // RFC 1952 §2.3.1: ID1 = 0x1f, ID2 = 0x8b.
    private static ReadOnlySpan<byte> GzipMagic => [0x1F, 0x8B];

    // System V gABI, e_ident[EI_MAG0..3].
    private static ReadOnlySpan<byte> ElfMagic => [0x7F, (byte)'E', (byte)'L', (byte)'F'];

    public static bool IsBzImage(string path) => HasBytesAt(path, BootHeaderMagicOffset, BootHeaderMagic);

    public static bool IsGzip(string path) => HasBytesAt(path, 0, GzipMagic);

    public static bool IsElf(string path) => HasBytesAt(path, 0, ElfMagic);

    private static bool HasBytesAt(string path, long offset, ReadOnlySpan<byte> expected)
    {
        try
        {
            using var f = File.OpenRead(path);
            if (f.Length < offset + expected.Length)
            {
                return false;
            }

            f.Position = offset;
            Span<byte> buffer = stackalloc byte[expected.Length];
            f.ReadExactly(buffer);
            return buffer.SequenceEqual(expected);
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
