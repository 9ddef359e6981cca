// Ethernet II header parsing over a span (IEEE 802.3 §3.1.1), tolerating one 802.1Q/802.1ad VLAN tag.
using System.Buffers.Binary;

namespace Ringvisor.Net.Ethernet;

public readonly ref struct EthernetFrame
{
    /// <summary>Destination + source + EtherType.</summary>
    public const int HeaderSize = 14;

    /// <summary>Largest frame the switch carries: 64 KiB payload (GSO-sized packets from TAP) plus headers.</summary>
    public const int MaxFrameSize = 65536 + 18;

    /// <summary>802.1Q customer VLAN and 802.1ad service VLAN tag protocol identifiers.</summary>
    public const ushort TpidVlan = 0x8100;
    public const ushort TpidServiceVlan = 0x88A8;

    private EthernetFrame(ReadOnlySpan<byte> data, ushort etherType, int? vlanId, int headerLength)
    {
        Data = data;
        EtherType = etherType;
        VlanId = vlanId;
        HeaderLength = headerLength;
    }

    public ReadOnlySpan<byte> Data { get; }

    public MacAddress Destination => MacAddress.FromSpan(Data);

    public MacAddress Source => MacAddress.FromSpan(Data[6..]);

    /// <summary>The EtherType after any VLAN tag.</summary>
    public ushort EtherType { get; }

    /// <summary>The 12-bit VLAN ID when the frame is tagged.</summary>
    public int? VlanId { get; }

    public int HeaderLength { get; }

    public ReadOnlySpan<byte> Payload => Data[HeaderLength..];

    /// <summary>Parses a frame without FCS; false when it is too short or too long to be Ethernet.</summary>
    public static bool TryParse(ReadOnlySpan<byte> data, out EthernetFrame frame)
    {
        frame = default;
        if (data.Length < HeaderSize || data.Length > MaxFrameSize)
        {
            return false;
        }

        ushort type = BinaryPrimitives.ReadUInt16BigEndian(data[12..]);
        if (type is TpidVlan or TpidServiceVlan)
        {
            if (data.Length < HeaderSize + 4)
            {
                return false;
            }

            int vid = BinaryPrimitives.ReadUInt16BigEndian(data[14..]) & 0x0FFF;
            frame = new EthernetFrame(data, BinaryPrimitives.ReadUInt16BigEndian(data[16..]), vid, HeaderSize + 4);
            return true;
        }

        frame = new EthernetFrame(data, type, null, HeaderSize);
        return true;
    }
}
