namespace Ringvisor.Devices.Pci;

/// <summary>Decoding of the configuration mechanism #1 address register (PCI Local Bus 3.0 §3.2.2.3.2).</summary>
public static class PciConfigAddress
{
    /// <summary>Bit 31: the next data-port access is a configuration cycle.</summary>
    public const uint EnableBit = 1u << 31;

    public static uint Encode(PciAddress a, int register) =>
        EnableBit | ((uint)a.Bus << 16) | ((uint)(a.Device & 0x1F) << 11) | ((uint)(a.Function & 0x7) << 8) | ((uint)register & 0xFC);

    public static PciAddress Decode(uint value, out int register)
    {
        register = (int)(value & 0xFC);
        return new PciAddress((byte)(value >> 16), (byte)((value >> 11) & 0x1F), (byte)((value >> 8) & 0x7));
    }
}
