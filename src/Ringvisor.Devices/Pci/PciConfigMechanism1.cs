// Configuration mechanism #1 (PCI Local Bus 3.0 §3.2.2.3.2): CONFIG_ADDRESS at 0xCF8 (DWORD accesses only),
// CONFIG_DATA at 0xCFC..0xCFF (any width; the low address bits select the byte within the register). Register this
// device at 0xCF8 with length 8. Port 0xCF9 is the PC reset control register (PIIX4 datasheet §4.1.17) on the same
// bytes a non-DWORD access would hit, so byte accesses at 0xCF9 go to the reset device when one is supplied.
using System.Buffers.Binary;
using Ringvisor.Core.Bus;

namespace Ringvisor.Devices.Pci;

public sealed class PciConfigMechanism1 : IBusDevice
{
    public const ulong BasePort = 0xCF8;
    public const ulong Length = 8;

    private const ulong DataOffset = 4;
    private const ulong ResetControlOffset = 1;

    private readonly PciBus _bus;
    private readonly IBusDevice? _resetControl;
    private uint _address;

    public PciConfigMechanism1(PciBus bus, IBusDevice? resetControl = null)
    {
        _bus = bus;
        _resetControl = resetControl;
    }

    public uint AddressRegister => Volatile.Read(ref _address);

    public void Read(ulong offset, Span<byte> data)
    {
        if (offset == 0 && data.Length == 4)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(data, Volatile.Read(ref _address));
            return;
        }

        if (offset == ResetControlOffset && data.Length == 1 && _resetControl is not null)
        {
            _resetControl.Read(0, data);
            return;
        }

        if (offset >= DataOffset && offset + (ulong)data.Length <= Length)
        {
            uint a = Volatile.Read(ref _address);
            if ((a & PciConfigAddress.EnableBit) != 0)
            {
                var fn = PciConfigAddress.Decode(a, out int reg);
                _bus.ReadConfig(fn, reg + (int)(offset - DataOffset), data);
                return;
            }
        }

        data.Fill(0xFF);
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset == 0 && data.Length == 4)
        {
            // Bits 1:0 are read-only zero; bits 30:24 are reserved (we keep them out so decode stays canonical).
            Volatile.Write(ref _address, BinaryPrimitives.ReadUInt32LittleEndian(data) & 0x80FF_FFFC);
            return;
        }

        if (offset == ResetControlOffset && data.Length == 1 && _resetControl is not null)
        {
            _resetControl.Write(0, data);
            return;
        }

        if (offset >= DataOffset && offset + (ulong)data.Length <= Length)
        {
            uint a = Volatile.Read(ref _address);
            if ((a & PciConfigAddress.EnableBit) != 0)
            {
                var fn = PciConfigAddress.Decode(a, out int reg);
                _bus.WriteConfig(fn, reg + (int)(offset - DataOffset), data);
            }
        }
    }
}
