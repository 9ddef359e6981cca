// Decodes the LZ4 "legacy frame" format, which the x86 kernel build uses for CONFIG_KERNEL_LZ4 payloads
// (lz4 -l; Debian 12's kernels). LZ4 Frame Format Description §"Legacy frame": magic 0x184C2102, then blocks,
// each a 4-byte little-endian compressed size followed by an LZ4 block that expands to at most 8 MiB.
// LZ4 Block Format Description: a block is a series of sequences — a token (high nibble literal length, low
// nibble match length - 4, 15 meaning "more length bytes follow, each added until one is < 255"), the literals,
// then a 2-byte little-endian match offset back into the output; the last sequence has literals only.
// Input is untrusted: every length and offset is checked and a bad stream throws InvalidDataException.
using System.Buffers.Binary;

namespace Ringvisor.Machine.Images;

public static class Lz4LegacyDecoder
{
    public const uint LegacyMagic = 0x184C2102;
    private const int LegacyMaxBlockSize = 8 << 20; // LEGACY_BLOCKSIZE in lz4 and lib/decompress_unlz4.c
    private const int MinMatch = 4;

    /// <summary>Decodes a whole legacy frame (several frames may follow each other).</summary>
    /// <param name="maxOutput">Refuse to produce more than this many bytes (a bound for untrusted input).</param>
    /// <exception cref="InvalidDataException">The data is not a well-formed legacy LZ4 stream.</exception>
    public static byte[] Decode(ReadOnlySpan<byte> input, long maxOutput = 1L << 30)
    {
        if (input.Length < 4 || BinaryPrimitives.ReadUInt32LittleEndian(input) != LegacyMagic)
        {
            throw new InvalidDataException("not an LZ4 legacy stream (magic 0x184C2102 missing)");
        }

        using var output = new MemoryStream();
        byte[] block = new byte[LegacyMaxBlockSize];
        int pos = 4;
        while (input.Length - pos >= 4)
        {
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(input[pos..]);
            pos += 4;
            if (size == LegacyMagic)
            {
                continue; // the next concatenated frame
            }

            if (size > (uint)(input.Length - pos))
            {
                throw new InvalidDataException($"LZ4 block of {size} bytes at offset {pos - 4} runs past the end of the input");
            }

            int produced = DecodeBlock(input.Slice(pos, (int)size), block);
            pos += (int)size;
            if (output.Length + produced > maxOutput)
            {
                throw new InvalidDataException($"LZ4 stream expands beyond {maxOutput} bytes");
            }

            output.Write(block, 0, produced);
        }

        if (pos != input.Length)
        {
            throw new InvalidDataException($"{input.Length - pos} stray bytes after the last LZ4 block");
        }

        return output.ToArray();
    }

    /// <summary>Decodes one LZ4 block into <paramref name="output"/>; returns the number of bytes produced.</summary>
    public static int DecodeBlock(ReadOnlySpan<byte> src, Span<byte> output)
    {
        int ip = 0, op = 0;
        while (true)
        {
            if (ip >= src.Length)
            {
                throw new InvalidDataException("LZ4 block ends without a final literal run");
            }

            byte token = src[ip++];
            int literals = ReadLength(src, ref ip, token >> 4);
            if (literals > src.Length - ip || literals > output.Length - op)
            {
                throw new InvalidDataException("LZ4 literal run exceeds the block's input or output");
            }

            src.Slice(ip, literals).CopyTo(output[op..]);
            ip += literals;
            op += literals;
            if (ip == src.Length)
            {
                return op; // the last sequence carries literals only
            }

            if (src.Length - ip < 2)
            {
                throw new InvalidDataException("LZ4 block truncated inside a match offset");
            }

            int offset = BinaryPrimitives.ReadUInt16LittleEndian(src[ip..]);
            ip += 2;
            if (offset == 0 || offset > op)
            {
                throw new InvalidDataException($"LZ4 match offset {offset} points before the start of the block's output");
            }

            int length = ReadLength(src, ref ip, token & 0xF) + MinMatch;
            if (length > output.Length - op)
            {
                throw new InvalidDataException("LZ4 match exceeds the block's output");
            }

            // Overlapping copies (offset < length) repeat the last bytes, so copy forward one byte at a time
            // unless the regions cannot overlap.
            if (offset >= length)
            {
                output.Slice(op - offset, length).CopyTo(output[op..]);
            }
            else
            {
                for (int i = 0; i < length; i++)
                {
                    output[op + i] = output[op - offset + i];
                }
            }

            op += length;
        }
    }

    private static int ReadLength(ReadOnlySpan<byte> src, ref int ip, int nibble)
    {
        int length = nibble;
        if (nibble != 15)
        {
            return length;
        }

        byte b;
        do
        {
            if (ip >= src.Length)
            {
                throw new InvalidDataException("LZ4 block truncated inside a length");
            }

            b = src[ip++];
            length += b;
            if (length > LegacyMaxBlockSize)
            {
                throw new InvalidDataException("LZ4 length exceeds the legacy block size");
            }
        }
        while (b == 255);
        return length;
    }
}
