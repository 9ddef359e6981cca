using System.Buffers.Binary;
using System.Text;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

public sealed class Lz4LegacyDecoderTests
{
    /// <summary>A legacy frame: magic, then each block prefixed with its 4-byte little-endian size.</summary>
    internal static byte[] Frame(params byte[][] blocks)
    {
        var ms = new MemoryStream();
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(word, Lz4LegacyDecoder.LegacyMagic);
        ms.Write(word);
        foreach (byte[] b in blocks)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(word, (uint)b.Length);
            ms.Write(word);
            ms.Write(b);
        }

        return ms.ToArray();
    }

    /// <summary>A block holding only literals (one final sequence), with extended length bytes when needed.</summary>
    internal static byte[] LiteralBlock(byte[] literals)
    {
        var b = new List<byte>();
        if (literals.Length < 15)
        {
            b.Add((byte)(literals.Length << 4));
        }
        else
        {
            b.Add(0xF0);
            int rest = literals.Length - 15;
            while (rest >= 255)
            {
                b.Add(255);
                rest -= 255;
            }

            b.Add((byte)rest);
        }

        b.AddRange(literals);
        return [.. b];
    }

    [Fact]
    public void DecodeBlock_OverlappingMatch_RepeatsBytes()
    {
        // "ab", then a 6-byte match at offset 2 ("ababab"), then the final literal "Z".
        byte[] block = [0x22, (byte)'a', (byte)'b', 0x02, 0x00, 0x10, (byte)'Z'];
        byte[] output = new byte[64];

        int n = Lz4LegacyDecoder.DecodeBlock(block, output);

        Assert.Equal("ababababZ", Encoding.ASCII.GetString(output, 0, n));
    }

    [Fact]
    public void DecodeBlock_NonOverlappingMatchWithExtendedLength_CopiesRange()
    {
        // 4 literals "wxyz", match offset 4 length 4 + 15 + 2 = 21 (overlapping pattern), final literal "!".
        byte[] block = [0x4F, (byte)'w', (byte)'x', (byte)'y', (byte)'z', 0x04, 0x00, 0x02, 0x10, (byte)'!'];
        byte[] output = new byte[64];

        int n = Lz4LegacyDecoder.DecodeBlock(block, output);

        Assert.Equal("wxyz" + string.Concat(Enumerable.Repeat("wxyz", 5)) + "w" + "!", Encoding.ASCII.GetString(output, 0, n));
    }

    [Fact]
    public void Decode_TwoBlocksWithLongLiteralRun_Concatenates()
    {
        byte[] first = Encoding.ASCII.GetBytes(new string('q', 300));
        byte[] second = Encoding.ASCII.GetBytes("tail");

        byte[] result = Lz4LegacyDecoder.Decode(Frame(LiteralBlock(first), LiteralBlock(second)));

        Assert.Equal([.. first, .. second], result);
    }

    [Theory]
    [InlineData(new byte[] { 0x10, (byte)'a', 0x00, 0x00, 0x10, (byte)'b' })]  // offset 0
    [InlineData(new byte[] { 0x10, (byte)'a', 0x05, 0x00, 0x10, (byte)'b' })]  // offset before the output start
    [InlineData(new byte[] { 0x50, (byte)'a' })]                               // literals run past the input
    [InlineData(new byte[] { 0x10, (byte)'a', 0x01 })]                         // truncated offset
    [InlineData(new byte[] { 0xF0 })]                                          // truncated length
    public void DecodeBlock_Malformed_ThrowsInvalidData(byte[] block)
    {
        Assert.Throws<InvalidDataException>(() => Lz4LegacyDecoder.DecodeBlock(block, new byte[64]));
    }

    [Fact]
    public void DecodeBlock_OutputTooSmall_ThrowsInvalidData()
    {
        Assert.Throws<InvalidDataException>(() => Lz4LegacyDecoder.DecodeBlock(LiteralBlock(new byte[40]), new byte[16]));
    }

    [Fact]
    public void Decode_BlockSizePastEnd_ThrowsInvalidData()
    {
        byte[] frame = Frame(LiteralBlock("abc"u8.ToArray()));
        BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(4), 1000);

        Assert.Throws<InvalidDataException>(() => Lz4LegacyDecoder.Decode(frame));
    }

    [Fact]
    public void Decode_WrongMagic_ThrowsInvalidData()
    {
        Assert.Throws<InvalidDataException>(() => Lz4LegacyDecoder.Decode([0x04, 0x22, 0x4D, 0x18, 0, 0, 0, 0]));
    }
}
