using System.Buffers.Binary;
using System.IO.Compression;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

public sealed class BzImagePayloadTests
{
    private static byte[] FakeVmlinux()
    {
        byte[] elf = new byte[200];
        elf[0] = 0x7F;
        elf[1] = (byte)'E';
        elf[2] = (byte)'L';
        elf[3] = (byte)'F';
        elf[4] = 2; // ELFCLASS64
        elf[5] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(0x10), 2);  // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(0x12), 62); // EM_X86_64
        for (int i = 64; i < elf.Length; i++)
        {
            elf[i] = (byte)(i * 7);
        }

        return elf;
    }

    /// <summary>A bzImage shell: one setup sector after the boot sector, "HdrS" protocol 2.15, the payload 16 bytes into the protected-mode part.</summary>
    private static byte[] FakeBzImage(byte[] payload)
    {
        const int SetupSects = 1, PayloadOffset = 16;
        byte[] image = new byte[(SetupSects + 1) * 512 + PayloadOffset + payload.Length + 32];
        image[0x1F1] = SetupSects;
        "HdrS"u8.CopyTo(image.AsSpan(0x202));
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x206), 0x020F);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x248), PayloadOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x24C), (uint)payload.Length);
        payload.CopyTo(image, (SetupSects + 1) * 512 + PayloadOffset);
        return image;
    }

    private static byte[] WithSizeTrailer(byte[] stream, int size)
    {
        byte[] r = new byte[stream.Length + 4];
        stream.CopyTo(r, 0);
        BinaryPrimitives.WriteInt32LittleEndian(r.AsSpan(stream.Length), size);
        return r;
    }

    [Fact]
    public void ExtractVmlinux_GzipPayload_ReturnsElf()
    {
        byte[] vmlinux = FakeVmlinux();
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        {
            gz.Write(vmlinux);
        }

        Assert.Equal(vmlinux, BzImagePayload.ExtractVmlinux(FakeBzImage(ms.ToArray())));
    }

    [Fact]
    public void ExtractVmlinux_Lz4PayloadWithSizeTrailer_ReturnsElf()
    {
        byte[] vmlinux = FakeVmlinux();
        byte[] payload = WithSizeTrailer(Lz4LegacyDecoderTests.Frame(Lz4LegacyDecoderTests.LiteralBlock(vmlinux)), vmlinux.Length);

        Assert.Equal("lz4", BzImagePayload.DetectCompression(payload));
        Assert.Equal(vmlinux, BzImagePayload.ExtractVmlinux(FakeBzImage(payload)));
    }

    [Fact]
    public void ExtractVmlinux_TrailerDisagreesWithOutput_ThrowsInvalidData()
    {
        byte[] vmlinux = FakeVmlinux();
        byte[] payload = WithSizeTrailer(Lz4LegacyDecoderTests.Frame(Lz4LegacyDecoderTests.LiteralBlock(vmlinux)), vmlinux.Length + 1);

        Assert.Throws<InvalidDataException>(() => BzImagePayload.ExtractVmlinux(FakeBzImage(payload)));
    }

    [Fact]
    public void ExtractVmlinux_PayloadNotElf_ThrowsInvalidData()
    {
        byte[] junk = new byte[100];
        byte[] payload = WithSizeTrailer(Lz4LegacyDecoderTests.Frame(Lz4LegacyDecoderTests.LiteralBlock(junk)), junk.Length);

        Assert.Throws<InvalidDataException>(() => BzImagePayload.ExtractVmlinux(FakeBzImage(payload)));
    }

    [Fact]
    public void GetPayload_LengthPastEndOfFile_ThrowsInvalidData()
    {
        byte[] image = FakeBzImage(new byte[64]);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x24C), 0xFFFF_FFF0);

        Assert.Throws<InvalidDataException>(() => BzImagePayload.GetPayload(image));
    }

    [Fact]
    public void GetPayload_NoHdrS_ThrowsInvalidData()
    {
        Assert.Throws<InvalidDataException>(() => BzImagePayload.GetPayload(new byte[4096]));
    }
}
