// QEMU's firmware configuration device (fw_cfg), traditional I/O-port interface only: a 16-bit selector register
// and an 8-bit data register that streams the selected item's bytes (QEMU docs/specs/fw_cfg.rst, "Selector
// Register", "Data Register"). Test kernels such as kvm-unit-tests read the vCPU count and RAM size from it.
//
// Wiring: pio.Register(FwCfg.DefaultPort, FwCfg.WindowLength, FwCfg.ForPc(ram, cpus), "fw_cfg").
// Window offset 0 is the selector (write a 16-bit key; the read offset returns to 0), offset 1 the data port. Reads
// past an item's end and of unknown keys return 0, writes to the data port are ignored (the spec deprecates them),
// and no DMA interface is offered (FW_CFG_ID says traditional only), so no guest value can reach guest memory.
using System.Buffers.Binary;
using System.Text;
using Ringvisor.Core.Bus;

namespace Ringvisor.Devices.Legacy;

public sealed class FwCfg : IBusDevice
{
    /// <summary>QEMU's x86 I/O base: selector at 0x510, data at 0x511 (fw_cfg.rst, "x86, x86_64").</summary>
    public const ushort DefaultPort = 0x510;

    /// <summary>Selector (2 bytes at offset 0, overlapping) and data (offset 1).</summary>
    public const int WindowLength = 2;

    /// <summary>fw_cfg.rst selector keys (also QEMU include/standard-headers/linux/qemu_fw_cfg.h).</summary>
    public const ushort KeySignature = 0x00;

    public const ushort KeyId = 0x01;
    public const ushort KeyRamSize = 0x03;
    public const ushort KeyNoGraphic = 0x04;
    public const ushort KeyCpuCount = 0x05;
    public const ushort KeyMaxCpus = 0x0F;
    public const ushort KeyFileDirectory = 0x19;

    /// <summary>Bit 14 of a selector asks for write access (ignored here); bit 15 selects the architecture-specific items and stays part of the key.</summary>
    private const ushort WriteChannelBit = 0x4000;

    /// <summary>FW_CFG_ID bit 0: the traditional interface exists; bit 1 (DMA) stays clear.</summary>
    private const uint IdTraditionalInterface = 1;

    private readonly Dictionary<ushort, byte[]> _items = [];
    private readonly Lock _lock = new();
    private ushort _selector;
    private int _offset;

    /// <summary>An empty device: only the signature, the ID and an empty file directory.</summary>
    public FwCfg()
    {
        SetItem(KeySignature, Encoding.ASCII.GetBytes("QEMU"));
        SetUInt32(KeyId, IdTraditionalInterface);

        // The file directory's count is big-endian (fw_cfg.rst, "File Directory"): zero files.
        SetItem(KeyFileDirectory, new byte[4]);
    }

    /// <summary>The items a PC guest reads: RAM size (bytes, 64-bit), vCPU count and maximum (16-bit), no graphics.</summary>
    public static FwCfg ForPc(ulong ramBytes, int vcpuCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vcpuCount);
        var cfg = new FwCfg();
        cfg.SetUInt64(KeyRamSize, ramBytes);
        cfg.SetUInt16(KeyCpuCount, (ushort)vcpuCount);
        cfg.SetUInt16(KeyMaxCpus, (ushort)vcpuCount);
        cfg.SetUInt16(KeyNoGraphic, 1);
        return cfg;
    }

    /// <summary>The currently selected key (without the write-channel bit).</summary>
    public ushort Selector
    {
        get
        {
            lock (_lock)
            {
                return _selector;
            }
        }
    }

    /// <summary>Sets item <paramref name="key"/> (bit 15 for an architecture-local item) to a copy of <paramref name="value"/>.</summary>
    public void SetItem(ushort key, ReadOnlySpan<byte> value)
    {
        lock (_lock)
        {
            _items[(ushort)(key & ~WriteChannelBit)] = value.ToArray();
        }
    }

    public void SetUInt16(ushort key, ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, value);
        SetItem(key, b);
    }

    public void SetUInt32(ushort key, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        SetItem(key, b);
    }

    public void SetUInt64(ushort key, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        SetItem(key, b);
    }

    public void Read(ulong offset, Span<byte> data)
    {
        lock (_lock)
        {
            // Every byte of a read at the data port streams the next item byte; the selector is write-only and reads as 0.
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = offset == 1 ? NextByte() : (byte)0;
            }
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset != 0 || data.Length < 2)
        {
            // Data-port writes are deprecated and ignored; a byte-wide selector write is not a valid access in QEMU.
            return;
        }

        lock (_lock)
        {
            _selector = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(data) & ~WriteChannelBit);
            _offset = 0;
        }
    }

    private byte NextByte()
    {
        if (!_items.TryGetValue(_selector, out byte[]? item) || _offset >= item.Length)
        {
            return 0;
        }

        return item[_offset++];
    }

    /// <summary>Saved state (version 1): the selector and the read position; the items are configuration.</summary>
    public FwCfgState Save()
    {
        lock (_lock)
        {
            return new FwCfgState(FwCfgState.CurrentVersion, _selector, _offset);
        }
    }

    public void Restore(FwCfgState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Version != FwCfgState.CurrentVersion || state.Offset < 0)
        {
            throw new ArgumentException($"fw_cfg state version {state.Version} (offset {state.Offset}) is not restorable; expected version {FwCfgState.CurrentVersion}");
        }

        lock (_lock)
        {
            _selector = state.Selector;
            _offset = state.Offset;
        }
    }
}
