// The switch's stream protocol: each frame is a 4-byte big-endian length followed by that many bytes of Ethernet
// frame (no FCS). This is the framing QEMU's "-netdev stream" uses, so a QEMU guest can join a Ringvisor switch.
using System.Buffers.Binary;

namespace Ringvisor.Net.Switching;

public static class SwitchFraming
{
    public const int LengthPrefixSize = 4;

    /// <summary>Writes one frame (length prefix and body, in one write).</summary>
    public static void Write(Stream stream, ReadOnlySpan<byte> frame)
    {
        var buffer = new byte[LengthPrefixSize + frame.Length];
        BinaryPrimitives.WriteUInt32BigEndian(buffer, (uint)frame.Length);
        frame.CopyTo(buffer.AsSpan(LengthPrefixSize));
        stream.Write(buffer);
    }

    /// <summary>
    /// Reads the next frame's length. Returns false at end of stream. A length above <paramref name="maxLength"/>
    /// cannot be resynchronised and is reported through <paramref name="tooLong"/>.
    /// </summary>
    public static bool TryReadLength(Stream stream, int maxLength, out int length, out bool tooLong)
    {
        Span<byte> prefix = stackalloc byte[LengthPrefixSize];
        tooLong = false;
        length = 0;
        if (!ReadExactly(stream, prefix))
        {
            return false;
        }

        uint n = BinaryPrimitives.ReadUInt32BigEndian(prefix);
        if (n > (uint)maxLength)
        {
            tooLong = true;
            return true;
        }

        length = (int)n;
        return true;
    }

    /// <summary>
    /// Whether <paramref name="e"/> means the connection is gone: the peer died (IOException, SocketException) or this
    /// side closed the stream while another thread was in Read/Write (ObjectDisposedException, or the
    /// InvalidOperationException NetworkStream throws once disposed: "the stream does not support reading").
    /// </summary>
    public static bool IsClosedConnection(Exception e) =>
        e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException or InvalidOperationException;

    /// <summary>Fills <paramref name="buffer"/> completely; false on end of stream.</summary>
    public static bool ReadExactly(Stream stream, Span<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            int n = stream.Read(buffer);
            if (n <= 0)
            {
                return false;
            }

            buffer = buffer[n..];
        }

        return true;
    }
}
