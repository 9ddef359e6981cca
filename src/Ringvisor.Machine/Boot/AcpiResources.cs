// ACPI resource descriptors (ACPI 6.4 §6.4) for a _CRS buffer: the small I/O port descriptor, the Word and DWord
// address space descriptors a PCI host bridge uses to announce its bus range and windows, and the end tag.
using System.Buffers.Binary;

namespace Ringvisor.Machine.Boot;

internal static class AcpiResources
{
    // §6.4.3.5: address space resource types.
    private const byte MemoryRange = 0;
    private const byte IoRange = 1;
    private const byte BusNumberRange = 2;

    /// <summary>§6.4.3.5 general flags: _MIF (bit 2) and _MAF (bit 3) set, positive decode, producer (bit 0 = 0).</summary>
    private const byte ProducerFixedRange = 0b1100;

    /// <summary>§6.4.3.5.5 I/O type-specific flags: _RNG = 3, both ISA and non-ISA ranges.</summary>
    private const byte IoEntireRange = 0b11;

    /// <summary>§6.4.3.5.5 memory type-specific flags: _RW (bit 0) read-write, _MEM (bits 2:1) 1 = cacheable.</summary>
    private const byte MemoryReadWrite = 0b001;

    private const byte MemoryReadWriteCacheable = 0b011;

    /// <summary>§6.4.2.5 I/O port descriptor: 16-bit decode, fixed range of <paramref name="length"/> ports.</summary>
    public static byte[] IoPort(ushort start, byte length)
    {
        var d = new byte[8];
        d[0] = 0x47; // small item 0x08, length 7
        d[1] = 1;    // _DEC: 16-bit decode
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(2), start);
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(4), start);
        d[6] = 1;    // alignment
        d[7] = length;
        return d;
    }

    /// <summary>§6.4.3.5.3 Word address space descriptor for bus numbers [first, last].</summary>
    public static byte[] BusNumbers(ushort first, ushort last) => Word(BusNumberRange, 0, first, last);

    /// <summary>§6.4.3.5.3 Word address space descriptor for I/O ports [first, last] the bridge forwards.</summary>
    public static byte[] IoWindow(ushort first, ushort last) => Word(IoRange, IoEntireRange, first, last);

    /// <summary>§6.4.3.5.2 DWord address space descriptor for a memory window [first, last].</summary>
    public static byte[] MemoryWindow(uint first, uint last, bool cacheable)
    {
        var d = new byte[26];
        d[0] = 0x87; // large item, DWord address space
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(1), 23);
        d[3] = MemoryRange;
        d[4] = ProducerFixedRange;
        d[5] = cacheable ? MemoryReadWriteCacheable : MemoryReadWrite;
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(6), 0);           // granularity
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(10), first);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(14), last);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(18), 0);          // translation offset
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(22), last - first + 1);
        return d;
    }

    /// <summary>§6.4.2.9 end tag; a zero checksum means "treat as valid".</summary>
    public static byte[] EndTag() => [0x79, 0];

    private static byte[] Word(byte type, byte typeFlags, ushort first, ushort last)
    {
        var d = new byte[16];
        d[0] = 0x88; // large item, Word address space
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(1), 13);
        d[3] = type;
        d[4] = ProducerFixedRange;
        d[5] = typeFlags;
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(6), 0);            // granularity
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(8), first);
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(10), last);
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(12), 0);           // translation offset
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(14), (ushort)(last - first + 1));
        return d;
    }
}
