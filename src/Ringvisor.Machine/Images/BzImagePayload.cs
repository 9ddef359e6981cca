// Extracts the uncompressed kernel (vmlinux, an ELF64 executable) from a bzImage, as scripts/extract-vmlinux does,
// so a loader can place the kernel directly and skip the in-guest decompressor (tens of millions of guest
// instructions that are slow under the bt engine). Linux x86 boot protocol (Documentation/arch/x86/boot.rst):
// setup_sects at 0x1F1, "HdrS" at 0x202, protocol version at 0x206, and from 2.08 payload_offset (0x248) and
// payload_length (0x24C), relative to the start of the protected-mode code at (setup_sects + 1) * 512.
// arch/x86/boot/compressed/Makefile appends the decompressed size (4 bytes, little-endian) to every format but gzip.
using System.Buffers.Binary;
using System.IO.Compression;

namespace Ringvisor.Machine.Images;

public static class BzImagePayload
{
    private const int SetupSectsOffset = 0x1F1;
    private const int HeaderMagicOffset = 0x202;
    private const int VersionOffset = 0x206;
    private const int PayloadOffsetOffset = 0x248;
    private const int PayloadLengthOffset = 0x24C;
    private const ushort PayloadFieldsVersion = 0x0208;
    private const int SectorSize = 512;
    private const int DefaultSetupSects = 4; // boot.rst: "if this field is 0, the real value is 4"
    private const ushort ElfMachineX86_64 = 62; // EM_X86_64
    private const long MaxVmlinuxSize = 512L << 20;

    /// <summary>The compression of the kernel payload, from its magic bytes.</summary>
    public static string DetectCompression(ReadOnlySpan<byte> payload) => payload switch
    {
        [0x1F, 0x8B, ..] => "gzip",
        [0x02, 0x21, 0x4C, 0x18, ..] => "lz4",
        [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00, ..] => "xz",
        [0x28, 0xB5, 0x2F, 0xFD, ..] => "zstd",
        [0x42, 0x5A, 0x68, ..] => "bzip2",
        [0x5D, 0x00, ..] => "lzma",
        [0x89, 0x4C, 0x5A, 0x4F, ..] => "lzo",
        _ => "unknown",
    };

    /// <summary>The compressed payload inside a bzImage.</summary>
    /// <exception cref="InvalidDataException">Not a bzImage of boot protocol 2.08 or later, or the payload lies outside it.</exception>
    public static ReadOnlySpan<byte> GetPayload(ReadOnlySpan<byte> bzImage)
    {
        if (bzImage.Length < PayloadLengthOffset + 4 || !bzImage.Slice(HeaderMagicOffset, 4).SequenceEqual("HdrS"u8))
        {
            throw new InvalidDataException("not a bzImage (no \"HdrS\" boot header)");
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(bzImage[VersionOffset..]);
        if (version < PayloadFieldsVersion)
        {
            throw new InvalidDataException($"boot protocol {version >> 8}.{version & 0xFF:D2} predates payload_offset (2.08)");
        }

        int setupSects = bzImage[SetupSectsOffset] == 0 ? DefaultSetupSects : bzImage[SetupSectsOffset];
        long start = (long)(setupSects + 1) * SectorSize + BinaryPrimitives.ReadUInt32LittleEndian(bzImage[PayloadOffsetOffset..]);
        long length = BinaryPrimitives.ReadUInt32LittleEndian(bzImage[PayloadLengthOffset..]);
        if (length < 8 || start + length > bzImage.Length)
        {
            throw new InvalidDataException("the bzImage's payload_offset/payload_length point outside the file");
        }

        return bzImage.Slice((int)start, (int)length);
    }

    /// <summary>Decompresses a bzImage's payload and checks that it is an x86-64 ELF executable.</summary>
    /// <exception cref="InvalidDataException">Malformed image or payload.</exception>
    /// <exception cref="GuestImageBuildException">The compression needs a host tool (xz, zstd) that is missing or failed, or is not supported.</exception>
    public static byte[] ExtractVmlinux(ReadOnlySpan<byte> bzImage)
    {
        var payload = GetPayload(bzImage);
        string compression = DetectCompression(payload);
        byte[] vmlinux;
        if (compression == "gzip")
        {
            using var input = new MemoryStream(payload.ToArray());
            using var gz = new GZipStream(input, CompressionMode.Decompress);
            using var output = new MemoryStream();
            gz.CopyTo(output);
            vmlinux = output.ToArray();
        }
        else
        {
            uint expected = BinaryPrimitives.ReadUInt32LittleEndian(payload[^4..]);
            if (expected > MaxVmlinuxSize)
            {
                throw new InvalidDataException($"the payload claims to expand to {expected} bytes");
            }

            var stream = payload[..^4];
            vmlinux = compression switch
            {
                "lz4" => Lz4LegacyDecoder.Decode(stream, MaxVmlinuxSize),
                "xz" => DecompressWithTool(stream, "xz", ["-dc", "--single-stream"]),
                "zstd" => DecompressWithTool(stream, "zstd", ["-dcq"]),
                _ => throw new GuestImageBuildException($"kernel payload compression '{compression}' is not supported for vmlinux extraction"),
            };
            if (vmlinux.Length != expected)
            {
                throw new InvalidDataException($"the payload expanded to {vmlinux.Length} bytes but its trailer says {expected}");
            }
        }

        if (vmlinux.Length < 64 || !vmlinux.AsSpan(0, 4).SequenceEqual((ReadOnlySpan<byte>)[0x7F, (byte)'E', (byte)'L', (byte)'F']) ||
            vmlinux[4] != 2 || BinaryPrimitives.ReadUInt16LittleEndian(vmlinux.AsSpan(0x12)) != ElfMachineX86_64)
        {
            throw new InvalidDataException("the decompressed kernel payload is not an x86-64 ELF64 vmlinux");
        }

        return vmlinux;
    }

    private static byte[] DecompressWithTool(ReadOnlySpan<byte> stream, string tool, string[] args)
    {
        string tmp = Path.Combine(Path.GetTempPath(), $"ringvisor-payload-{Guid.NewGuid():N}");
        try
        {
            File.WriteAllBytes(tmp, stream.ToArray());
            return ExternalTool.RunBinary($"decompress the kernel payload ({tool})", tool, [.. args, "--", tmp]);
        }
        finally
        {
            File.Delete(tmp);
        }
    }
}
