// A 48-bit IEEE 802 MAC address as a value (fits a dictionary key without allocation).
using System.Globalization;

namespace Ringvisor.Net.Ethernet;

public readonly record struct MacAddress(ulong Value)
{
    public const int Length = 6;

    public static readonly MacAddress Broadcast = new(0xFFFF_FFFF_FFFF);

    /// <summary>Bit 0 of the first octet: group (multicast/broadcast) address (IEEE 802-2014 §8.2).</summary>
    public bool IsMulticast => ((Value >> 40) & 1) != 0;

    public bool IsBroadcast => Value == Broadcast.Value;

    public static MacAddress FromSpan(ReadOnlySpan<byte> b) =>
        new(((ulong)b[0] << 40) | ((ulong)b[1] << 32) | ((ulong)b[2] << 24) | ((ulong)b[3] << 16) | ((ulong)b[4] << 8) | b[5]);

    /// <summary>Parses "52:56:00:12:34:56" (or with '-').</summary>
    /// <exception cref="FormatException">Not six hexadecimal octets.</exception>
    public static MacAddress Parse(string text)
    {
        var parts = text.Split(':', '-');
        if (parts.Length != Length)
        {
            throw new FormatException($"'{text}' is not a MAC address (expected six hex octets like 52:56:00:12:34:56)");
        }

        ulong v = 0;
        foreach (var p in parts)
        {
            if (p.Length is < 1 or > 2 || !byte.TryParse(p, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte octet))
            {
                throw new FormatException($"'{text}' is not a MAC address (bad octet '{p}')");
            }

            v = (v << 8) | octet;
        }

        return new MacAddress(v);
    }

    public void CopyTo(Span<byte> destination)
    {
        for (int i = 0; i < Length; i++)
        {
            destination[i] = (byte)(Value >> (8 * (Length - 1 - i)));
        }
    }

    public byte[] ToArray()
    {
        var b = new byte[Length];
        CopyTo(b);
        return b;
    }

    public override string ToString()
    {
        Span<byte> b = stackalloc byte[Length];
        CopyTo(b);
        return $"{b[0]:x2}:{b[1]:x2}:{b[2]:x2}:{b[3]:x2}:{b[4]:x2}:{b[5]:x2}";
    }
}
