// The AML encoder against hand-encoded bytes from the ACPI 6.4 grammar (§20.2).
using Ringvisor.Machine.Boot;

namespace Ringvisor.Machine.Tests.Boot;

public sealed class AmlTests
{
    [Theory]
    [InlineData(0UL, new byte[] { 0x00 })]
    [InlineData(1UL, new byte[] { 0x01 })]
    [InlineData(2UL, new byte[] { 0x0A, 0x02 })]
    [InlineData(0x100UL, new byte[] { 0x0B, 0x00, 0x01 })]
    [InlineData(0x0001_FFFFUL, new byte[] { 0x0C, 0xFF, 0xFF, 0x01, 0x00 })]
    [InlineData(0x1_0000_0000UL, new byte[] { 0x0E, 0, 0, 0, 0, 1, 0, 0, 0 })]
    public void Integer_Value_ShortestEncoding(ulong value, byte[] expected) => Assert.Equal(expected, Aml.Integer(value));

    [Theory]
    [InlineData(0, new byte[] { 0x01 })]
    [InlineData(62, new byte[] { 0x3F })]          // 62 + 1 = 63 still fits the one-byte form
    [InlineData(63, new byte[] { 0x41, 0x04 })]    // 63 + 2 = 65 = 0x041: low nibble 1, then 0x04
    [InlineData(4093, new byte[] { 0x4F, 0xFF })]  // 4093 + 2 = 4095, the largest two-byte form
    [InlineData(4094, new byte[] { 0x81, 0x00, 0x01 })] // 4094 + 3 = 4097 = 0x1001
    public void WithPkgLength_Lengths_CountThemselves(int bodyLength, byte[] expectedPrefix)
    {
        byte[] encoded = Aml.WithPkgLength(new byte[bodyLength]);
        int prefixLength = encoded.Length - bodyLength;
        byte lead = encoded[0];
        int count = lead >> 6;
        int total = count == 0 ? lead & 0x3F : lead & 0x0F;
        for (int i = 0; i < count; i++)
        {
            total |= encoded[1 + i] << (4 + (8 * i));
        }

        Assert.Equal(encoded.Length, total);
        Assert.Equal(count + 1, prefixLength);
        Assert.Equal(expectedPrefix, encoded[..prefixLength]);
    }

    [Fact]
    public void EisaId_PciHostBridge_MatchesCompressedId()
    {
        // EISAID("PNP0A03") is 0x030AD041 (what iasl emits for the PCI root bridge).
        Assert.Equal(new byte[] { 0x0C, 0x41, 0xD0, 0x0A, 0x03 }, Aml.EisaId("PNP0A03"));
        Assert.Throws<ArgumentException>(() => Aml.EisaId("pnp0a03"));
    }

    [Fact]
    public void NameString_RootAndDualSegments_EncodesPrefixes()
    {
        Assert.Equal("\\_SB_"u8.ToArray(), Aml.NameString("\\_SB"));
        Assert.Equal(new byte[] { 0x5C, 0x2E, (byte)'_', (byte)'S', (byte)'B', (byte)'_', (byte)'P', (byte)'C', (byte)'I', (byte)'0' }, Aml.NameString("\\_SB.PCI0"));
        Assert.Throws<ArgumentException>(() => Aml.NameString("TOOLONG"));
        Assert.Throws<ArgumentException>(() => Aml.NameString("a_b"));
    }

    [Fact]
    public void DeviceAndName_Nested_EncodesExtOpAndLengths()
    {
        byte[] dev = Aml.Device("PCI0", Aml.Name("_UID", Aml.Integer(0)));

        // 5B 82 PkgLength "PCI0" 08 "_UID" 00
        Assert.Equal(new byte[] { 0x5B, 0x82, 0x0B, (byte)'P', (byte)'C', (byte)'I', (byte)'0', 0x08, (byte)'_', (byte)'U', (byte)'I', (byte)'D', 0x00 }, dev);
    }

    [Fact]
    public void Buffer_Bytes_PrefixesSize()
    {
        Assert.Equal(new byte[] { 0x11, 0x05, 0x0A, 0x02, 0x79, 0x00 }, Aml.Buffer([0x79, 0x00]));
    }
}
