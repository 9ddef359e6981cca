using System.Buffers.Binary;
using Ringvisor.Net.Ethernet;

namespace Ringvisor.Net.Tests;

internal static class FrameBuilder
{
    public static byte[] Build(MacAddress dst, MacAddress src, ushort etherType = 0x0800, int payload = 46, byte fill = 0)
    {
        var f = new byte[14 + payload];
        dst.CopyTo(f);
        src.CopyTo(f.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), etherType);
        f.AsSpan(14).Fill(fill);
        return f;
    }
}
