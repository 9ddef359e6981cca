// MSI-X (PCI Local Bus 3.0 §6.8.2): the capability registers in configuration space, and the vector table and
// pending bit array that live in a memory BAR. This class is the register logic of the table/PBA part of the BAR
// (offsets are BAR-relative) and delivers messages through IInterruptController.SignalMsi.
using System.Buffers.Binary;
using Ringvisor.Core.Bus;
using Ringvisor.Core.Interrupts;

namespace Ringvisor.Devices.Pci;

public sealed class MsixCapability : IBusDevice
{
    /// <summary>Capability ID for MSI-X (PCI Code and ID Assignment, §2).</summary>
    public const byte CapabilityId = 0x11;

    /// <summary>Message Control bit 15: MSI-X enable (§6.8.2.3).</summary>
    public const ushort ControlEnable = 1 << 15;

    /// <summary>Message Control bit 14: function mask (§6.8.2.3).</summary>
    public const ushort ControlFunctionMask = 1 << 14;

    /// <summary>Each table entry is 16 bytes: address low, address high, data, vector control (§6.8.2.6).</summary>
    public const int EntrySize = 16;

    /// <summary>Vector control bit 0: the per-vector mask (§6.8.2.9).</summary>
    private const uint VectorControlMask = 1;

    /// <summary>§6.8.2.3: table size is encoded as N-1 in 11 bits.</summary>
    private const int MaxVectors = 2048;

    private readonly object _gate = new();
    private readonly PciConfigSpace _config;
    private readonly int _capabilityOffset;
    private readonly byte[] _table;
    private readonly ulong[] _pending;
    private IInterruptController? _interrupts;
    private long _delivered;
    private long _pendedWhileMasked;

    internal MsixCapability(PciConfigSpace config, int vectorCount, int barIndex, uint tableOffset, uint pbaOffset)
    {
        if (vectorCount is < 1 or > MaxVectors)
        {
            throw new ArgumentOutOfRangeException(nameof(vectorCount), vectorCount, "MSI-X supports 1..2048 vectors");
        }

        if (barIndex is < 0 or > 5 || (tableOffset & 7) != 0 || (pbaOffset & 7) != 0)
        {
            throw new ArgumentException("MSI-X table/PBA must be QWORD aligned inside BAR0..5");
        }

        _config = config;
        VectorCount = vectorCount;
        TableOffset = tableOffset;
        PbaOffset = pbaOffset;
        _table = new byte[vectorCount * EntrySize];
        _pending = new ulong[(vectorCount + 63) / 64];
        Span<byte> body = stackalloc byte[10];
        BinaryPrimitives.WriteUInt16LittleEndian(body, (ushort)(vectorCount - 1));
        BinaryPrimitives.WriteUInt32LittleEndian(body[2..], tableOffset | (uint)barIndex);
        BinaryPrimitives.WriteUInt32LittleEndian(body[6..], pbaOffset | (uint)barIndex);
        _capabilityOffset = config.AddCapability(CapabilityId, body);
        config.SetWritable(_capabilityOffset + 2, 2, ControlEnable | ControlFunctionMask);
        ResetTable();
    }

    public int VectorCount { get; }

    public uint TableOffset { get; }

    public uint PbaOffset { get; }

    /// <summary>Bytes the table and PBA span from the start of the BAR.</summary>
    public ulong RegionEnd => Math.Max(TableOffset + (ulong)_table.Length, PbaOffset + ((ulong)_pending.Length * 8));

    public bool Enabled => (_config.ReadU16(_capabilityOffset + 2) & ControlEnable) != 0;

    public bool FunctionMasked => (_config.ReadU16(_capabilityOffset + 2) & ControlFunctionMask) != 0;

    public long Delivered => Interlocked.Read(ref _delivered);

    public long PendedWhileMasked => Interlocked.Read(ref _pendedWhileMasked);

    /// <summary>Whether vector <paramref name="vector"/>'s pending bit is set.</summary>
    public bool IsPending(int vector)
    {
        lock (_gate)
        {
            return (uint)vector < (uint)VectorCount && (_pending[vector >> 6] & (1UL << (vector & 63))) != 0;
        }
    }

    /// <summary>
    /// Signals <paramref name="vector"/>: sends its message, or sets its pending bit while it or the function is
    /// masked (§6.8.2.9). Returns false when MSI-X is disabled or the vector does not exist (nothing happens).
    /// </summary>
    public bool Signal(int vector)
    {
        ulong address;
        uint data;
        lock (_gate)
        {
            if (!Enabled || (uint)vector >= (uint)VectorCount)
            {
                return false;
            }

            if (FunctionMasked || IsVectorMasked(vector))
            {
                _pending[vector >> 6] |= 1UL << (vector & 63);
                Interlocked.Increment(ref _pendedWhileMasked);
                return true;
            }

            (address, data) = Message(vector);
        }

        Deliver(address, data);
        return true;
    }

    public void Read(ulong offset, Span<byte> data)
    {
        lock (_gate)
        {
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = ReadByte(offset + (ulong)i);
            }
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        List<(ulong, uint)>? fire = null;
        lock (_gate)
        {
            for (int i = 0; i < data.Length; i++)
            {
                ulong o = offset + (ulong)i;
                if (o >= TableOffset && o - TableOffset < (ulong)_table.Length)
                {
                    int t = (int)(o - TableOffset);
                    int field = t % EntrySize;
                    if (field == 12)
                    {
                        // Only the mask bit of vector control is writable; bits 31:1 are reserved (§6.8.2.9).
                        _table[t] = (byte)((_table[t] & ~VectorControlMask) | (data[i] & VectorControlMask));
                    }
                    else if (field < 12)
                    {
                        _table[t] = data[i];
                    }
                }

                // The PBA is read-only (§6.8.2.10); writes to it and to gaps are ignored.
            }

            CollectUnmaskedPending(ref fire);
        }

        DeliverAll(fire);
    }

    /// <summary>Called after a configuration write: unmasking the function releases pending vectors.</summary>
    internal void OnConfigWritten(int offset, int length)
    {
        if (offset > _capabilityOffset + 3 || offset + length <= _capabilityOffset + 2)
        {
            return;
        }

        List<(ulong, uint)>? fire = null;
        lock (_gate)
        {
            CollectUnmaskedPending(ref fire);
        }

        DeliverAll(fire);
    }

    internal void Attach(IInterruptController interrupts) => _interrupts = interrupts;

    /// <summary>Function reset: every vector masked, no pending bits, MSI-X disabled (§6.8.2.9).</summary>
    public void Reset()
    {
        lock (_gate)
        {
            ResetTable();
            Array.Clear(_pending);
            _config.SetU16(_capabilityOffset + 2, (ushort)(VectorCount - 1));
        }
    }

    public MsixState Save()
    {
        lock (_gate)
        {
            return new MsixState((byte[])_table.Clone(), (ulong[])_pending.Clone());
        }
    }

    /// <exception cref="ArgumentException">The saved table has a different number of vectors.</exception>
    public void Restore(MsixState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Table.Length != _table.Length || state.Pending.Length != _pending.Length)
        {
            throw new ArgumentException($"MSI-X state has {state.Table.Length / EntrySize} vectors, this function has {VectorCount}");
        }

        lock (_gate)
        {
            state.Table.CopyTo(_table, 0);
            state.Pending.CopyTo(_pending, 0);
        }
    }

    private void ResetTable()
    {
        Array.Clear(_table);
        for (int v = 0; v < VectorCount; v++)
        {
            _table[(v * EntrySize) + 12] = (byte)VectorControlMask;
        }
    }

    private bool IsVectorMasked(int vector) => (_table[(vector * EntrySize) + 12] & VectorControlMask) != 0;

    private (ulong Address, uint Data) Message(int vector)
    {
        var e = _table.AsSpan(vector * EntrySize, EntrySize);
        ulong address = BinaryPrimitives.ReadUInt32LittleEndian(e) | ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(e[4..]) << 32);
        return (address, BinaryPrimitives.ReadUInt32LittleEndian(e[8..]));
    }

    private byte ReadByte(ulong o)
    {
        if (o >= TableOffset && o - TableOffset < (ulong)_table.Length)
        {
            return _table[o - TableOffset];
        }

        if (o >= PbaOffset && o - PbaOffset < (ulong)_pending.Length * 8)
        {
            ulong b = o - PbaOffset;
            return (byte)(_pending[b / 8] >> (int)(8 * (b % 8)));
        }

        return 0;
    }

    private void CollectUnmaskedPending(ref List<(ulong, uint)>? fire)
    {
        if (!Enabled || FunctionMasked)
        {
            return;
        }

        for (int w = 0; w < _pending.Length; w++)
        {
            ulong bits = _pending[w];
            while (bits != 0)
            {
                int b = System.Numerics.BitOperations.TrailingZeroCount(bits);
                bits &= bits - 1;
                int v = (w * 64) + b;
                if (!IsVectorMasked(v))
                {
                    _pending[w] &= ~(1UL << b);
                    (fire ??= []).Add(Message(v));
                }
            }
        }
    }

    private void DeliverAll(List<(ulong, uint)>? fire)
    {
        if (fire is null)
        {
            return;
        }

        foreach (var (a, d) in fire)
        {
            Deliver(a, d);
        }
    }

    private void Deliver(ulong address, uint data)
    {
        Interlocked.Increment(ref _delivered);
        _interrupts?.SignalMsi(address, data);
    }
}
