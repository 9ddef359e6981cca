// A type-0 configuration space header (PCI Local Bus 3.0 §6.1, §6.2) plus the capability area, with per-byte
// write masks so read-only, read/write and write-1-to-clear registers need no special cases; BAR sizing falls out
// of the masks (the size bits of a BAR are read-only zero, so writing all ones reads back the size mask).
using System.Buffers.Binary;

namespace Ringvisor.Devices.Pci;

public sealed class PciConfigSpace
{
    /// <summary>PCIe extended configuration space per function (PCIe 4.0 §7.2.2); mechanism #1 sees the first 256.</summary>
    public const int Size = 4096;

    // PCI Local Bus 3.0 §6.1 header offsets.
    public const int VendorIdOffset = 0x00;
    public const int DeviceIdOffset = 0x02;
    public const int CommandOffset = 0x04;
    public const int StatusOffset = 0x06;
    public const int RevisionOffset = 0x08;
    public const int ClassCodeOffset = 0x09;
    public const int HeaderTypeOffset = 0x0E;
    public const int Bar0Offset = 0x10;
    public const int SubsystemVendorIdOffset = 0x2C;
    public const int SubsystemIdOffset = 0x2E;
    public const int CapabilitiesPointerOffset = 0x34;
    public const int InterruptLineOffset = 0x3C;
    public const int InterruptPinOffset = 0x3D;

    // PCI Local Bus 3.0 §6.2.2 command register bits.
    public const ushort CommandIoEnable = 1 << 0;
    public const ushort CommandMemoryEnable = 1 << 1;
    public const ushort CommandBusMaster = 1 << 2;
    public const ushort CommandParityErrorResponse = 1 << 6;
    public const ushort CommandSerrEnable = 1 << 8;
    public const ushort CommandInterruptDisable = 1 << 10;

    // PCI Local Bus 3.0 §6.2.3 status register bits.
    public const ushort StatusInterrupt = 1 << 3;
    public const ushort StatusCapabilitiesList = 1 << 4;

    /// <summary>Status bits 15..11 and 8 are write-1-to-clear error bits (§6.2.3).</summary>
    private const ushort StatusWriteOneToClear = 0xF900;

    /// <summary>Capabilities start after the 64-byte predefined header (§6.7).</summary>
    private const int FirstCapabilityOffset = 0x40;

    /// <summary>The capability list must stay inside the 256-byte PCI-compatible space (§6.7).</summary>
    private const int CapabilityAreaEnd = 0x100;

    private readonly byte[] _data = new byte[Size];
    private readonly byte[] _writable = new byte[Size];
    private readonly byte[] _writeOneToClear = new byte[Size];
    private int _nextCapability = FirstCapabilityOffset;
    private int _lastCapability;

    public PciConfigSpace(ushort vendorId, ushort deviceId, uint classCode, byte revision, ushort subsystemVendorId, ushort subsystemId)
    {
        SetU16(VendorIdOffset, vendorId);
        SetU16(DeviceIdOffset, deviceId);
        _data[RevisionOffset] = revision;
        _data[ClassCodeOffset] = (byte)classCode;
        _data[ClassCodeOffset + 1] = (byte)(classCode >> 8);
        _data[ClassCodeOffset + 2] = (byte)(classCode >> 16);
        SetU16(SubsystemVendorIdOffset, subsystemVendorId);
        SetU16(SubsystemIdOffset, subsystemId);
        const ushort commandWritable = CommandIoEnable | CommandMemoryEnable | CommandBusMaster | CommandParityErrorResponse |
                                       CommandSerrEnable | CommandInterruptDisable;
        SetMask(_writable, CommandOffset, 2, commandWritable);
        SetMask(_writeOneToClear, StatusOffset, 2, StatusWriteOneToClear);
        _writable[InterruptLineOffset] = 0xFF;
    }

    public ushort Command => ReadU16(CommandOffset);

    public byte InterruptPin
    {
        get => _data[InterruptPinOffset];
        set => _data[InterruptPinOffset] = value;
    }

    public byte InterruptLine
    {
        get => _data[InterruptLineOffset];
        set => _data[InterruptLineOffset] = value;
    }

    public ushort ReadU16(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(_data.AsSpan(offset));

    public uint ReadU32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(_data.AsSpan(offset));

    /// <summary>Sets a register's value directly (device side: read-only fields, status bits).</summary>
    public void SetU16(int offset, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(_data.AsSpan(offset), value);

    public void SetU32(int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(_data.AsSpan(offset), value);

    /// <summary>Makes the bits of <paramref name="mask"/> in the <paramref name="width"/>-byte register guest-writable.</summary>
    public void SetWritable(int offset, int width, ulong mask) => SetMask(_writable, offset, width, mask);

    /// <summary>Sets or clears the interrupt status bit (§6.2.3 bit 3 mirrors the function's INTx# state).</summary>
    public void SetInterruptStatus(bool asserted)
    {
        ushort s = ReadU16(StatusOffset);
        SetU16(StatusOffset, asserted ? (ushort)(s | StatusInterrupt) : (ushort)(s & ~StatusInterrupt));
    }

    /// <summary>
    /// Declares a BAR: the size bits become read-only zero, the type bits read-only (§6.2.5.1). A 64-bit BAR also
    /// claims the next register for the upper 32 address bits.
    /// </summary>
    public void DefineBar(PciBar bar)
    {
        int offset = Bar0Offset + (bar.Index * 4);
        ulong sizeMask = ~(bar.Size - 1);
        switch (bar.Kind)
        {
            case PciBarKind.Io:
                SetU32(offset, 0x1); // bit 0: I/O space indicator
                SetMask(_writable, offset, 4, sizeMask & 0xFFFF_FFFC);
                break;
            case PciBarKind.Memory32:
                SetU32(offset, bar.Prefetchable ? 0x8u : 0x0u); // bits 2:1 = 00b (32-bit), bit 3 prefetchable
                SetMask(_writable, offset, 4, sizeMask & 0xFFFF_FFF0);
                break;
            case PciBarKind.Memory64:
                SetU32(offset, 0x4u | (bar.Prefetchable ? 0x8u : 0x0u)); // bits 2:1 = 10b (64-bit)
                SetMask(_writable, offset, 4, sizeMask & 0xFFFF_FFF0);
                SetMask(_writable, offset + 4, 4, sizeMask >> 32);
                break;
        }
    }

    /// <summary>The address a BAR currently holds (type bits stripped).</summary>
    public ulong GetBarAddress(PciBar bar)
    {
        int offset = Bar0Offset + (bar.Index * 4);
        uint low = ReadU32(offset);
        return bar.Kind switch
        {
            PciBarKind.Io => low & 0xFFFF_FFFCu,
            PciBarKind.Memory32 => low & 0xFFFF_FFF0u,
            _ => (low & 0xFFFF_FFF0u) | ((ulong)ReadU32(offset + 4) << 32),
        };
    }

    /// <summary>Firmware-style BAR programming (the bus's allocator; not masked).</summary>
    public void SetBarAddress(PciBar bar, ulong address)
    {
        int offset = Bar0Offset + (bar.Index * 4);
        uint typeBits = ReadU32(offset) & (bar.Kind == PciBarKind.Io ? 0x3u : 0xFu);
        SetU32(offset, (uint)address | typeBits);
        if (bar.Kind == PciBarKind.Memory64)
        {
            SetU32(offset + 4, (uint)(address >> 32));
        }
    }

    /// <summary>
    /// Appends a capability (§6.7) with <paramref name="body"/> following the ID/next bytes; returns its offset.
    /// </summary>
    /// <exception cref="InvalidOperationException">The capability area (0x40..0xFF) is full.</exception>
    public int AddCapability(byte id, ReadOnlySpan<byte> body)
    {
        int length = (2 + body.Length + 3) & ~3;
        int offset = _nextCapability;
        if (offset + length > CapabilityAreaEnd)
        {
            throw new InvalidOperationException($"PCI capability 0x{id:X2} does not fit in configuration space");
        }

        _data[offset] = id;
        _data[offset + 1] = 0;
        body.CopyTo(_data.AsSpan(offset + 2));
        if (_lastCapability == 0)
        {
            _data[CapabilitiesPointerOffset] = (byte)offset;
            SetU16(StatusOffset, (ushort)(ReadU16(StatusOffset) | StatusCapabilitiesList));
        }
        else
        {
            _data[_lastCapability + 1] = (byte)offset;
        }

        _lastCapability = offset;
        _nextCapability = offset + length;
        return offset;
    }

    /// <summary>Reads any run of bytes; bytes past the 4 KiB space read as ones.</summary>
    public void Read(int offset, Span<byte> data)
    {
        for (int i = 0; i < data.Length; i++)
        {
            int o = offset + i;
            data[i] = o is >= 0 and < Size ? _data[o] : (byte)0xFF;
        }
    }

    /// <summary>Guest write: only writable bits change; write-1-to-clear bits clear where a one is written.</summary>
    public void Write(int offset, ReadOnlySpan<byte> data)
    {
        for (int i = 0; i < data.Length; i++)
        {
            int o = offset + i;
            if (o is < 0 or >= Size)
            {
                continue;
            }

            byte v = data[i];
            byte w = _writable[o];
            byte c = _writeOneToClear[o];
            byte old = _data[o];
            _data[o] = (byte)((old & ~w & ~(v & c)) | (v & w));
        }
    }

    /// <summary>A copy of the register contents (the masks are structural and come from the constructor).</summary>
    public byte[] Snapshot() => (byte[])_data.Clone();

    /// <exception cref="ArgumentException">The snapshot is not 4096 bytes.</exception>
    public void Load(ReadOnlySpan<byte> snapshot)
    {
        if (snapshot.Length != Size)
        {
            throw new ArgumentException($"PCI configuration snapshot must be {Size} bytes, got {snapshot.Length}");
        }

        snapshot.CopyTo(_data);
    }

    private static void SetMask(byte[] target, int offset, int width, ulong mask)
    {
        for (int i = 0; i < width; i++)
        {
            target[offset + i] = (byte)(mask >> (8 * i));
        }
    }
}
