// Intel MultiProcessor Specification 1.4 tables: the floating pointer structure (§4.1) and the MP configuration
// table (§4.2, §4.3) describing the vCPUs, the ISA bus, the IOAPIC and how ISA IRQs and the LAPIC LINT pins are
// wired. Both engines' machines present the same table; Linux finds it by scanning the last KiB of base memory.
using System.Buffers.Binary;
using System.Text;
using Ringvisor.Core.Memory;

namespace Ringvisor.Machine.Boot;

public static class MpTable
{
    /// <summary>APIC IDs are 8 bits and 0xFF is the broadcast ID; the IOAPIC takes ID = vCPU count.</summary>
    public const int MaxVcpus = 254;

    /// <summary>Where the floating pointer goes: the first 16 bytes of the last KiB of base memory (MP Spec §4).</summary>
    public const ulong FloatingPointerAddress = BootLayout.EbdaAddress;

    public const int FloatingPointerSize = 16;
    public const int HeaderSize = 44;
    public const int ProcessorEntrySize = 20;
    public const int OtherEntrySize = 8;

    // MP Spec 1.4 Table 4-3: entry type codes.
    public const byte EntryProcessor = 0;
    public const byte EntryBus = 1;
    public const byte EntryIoApic = 2;
    public const byte EntryIoInterrupt = 3;
    public const byte EntryLocalInterrupt = 4;

    // MP Spec 1.4 Table 4-10: interrupt types.
    public const byte InterruptInt = 0;
    public const byte InterruptNmi = 1;
    public const byte InterruptExtInt = 3;

    /// <summary>MP Spec 1.4 Table 4-1: specification revision 1.4.</summary>
    private const byte SpecRevision = 4;

    /// <summary>Integrated xAPIC version register value (as KVM's and our LAPIC report; SDM Vol. 3A §10.4.8).</summary>
    private const byte LocalApicVersion = 0x14;

    /// <summary>82093AA IOAPIC version register value (82093AA datasheet §3.2.2).</summary>
    private const byte IoApicVersion = 0x11;

    // MP Spec 1.4 Table 4-4: CPU flags EN (bit 0) and BP (bit 1); signature family 6; feature flags FPU | APIC.
    private const byte CpuEnabled = 0x01;
    private const byte CpuBootProcessor = 0x02;
    private const uint CpuSignature = 0x0000_0600;
    private const uint CpuFeatures = (1u << 0) | (1u << 9);

    /// <summary>The ISA IRQ the PC wires to IOAPIC pin 2 (the 8254 timer, "IRQ0 override").</summary>
    private const int TimerIrq = 0;
    private const int TimerPin = 2;

    /// <summary>ISA IRQ 2 is the 8259 cascade: no device raises it and its pin carries IRQ0 instead.</summary>
    private const int CascadeIrq = 2;

    /// <summary>Total bytes of the configuration table (header + entries) for <paramref name="vcpuCount"/> vCPUs.</summary>
    public static int ConfigTableSize(int vcpuCount) =>
        HeaderSize + (vcpuCount * ProcessorEntrySize) + (OtherEntrySize * (1 + 1 + IoInterruptCount + 2));

    /// <summary>I/O interrupt entries: ISA IRQs 0-15 except the cascade IRQ 2 (its pin 2 carries IRQ0).</summary>
    public const int IoInterruptCount = 15;

    /// <summary>Where the configuration table goes: right after the floating pointer when it fits in the EBDA KiB, else 0xF0000.</summary>
    public static ulong ConfigTableAddress(int vcpuCount) =>
        ConfigTableSize(vcpuCount) <= 0x400 - FloatingPointerSize
            ? FloatingPointerAddress + FloatingPointerSize
            : BootLayout.BiosAreaAddress;

    /// <summary>Writes the floating pointer and configuration table; returns the floating pointer's address.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The vCPU count is outside 1..<see cref="MaxVcpus"/>.</exception>
    /// <exception cref="ArgumentException">Guest RAM does not cover the base-memory and BIOS areas.</exception>
    public static ulong Write(GuestMemory memory, int vcpuCount)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (vcpuCount < 1 || vcpuCount > MaxVcpus)
        {
            throw new ArgumentOutOfRangeException(nameof(vcpuCount), vcpuCount, $"the MP table describes 1 to {MaxVcpus} vCPUs");
        }

        ulong configAddress = ConfigTableAddress(vcpuCount);
        byte[] config = BuildConfigTable(vcpuCount);
        var pointer = new byte[FloatingPointerSize];
        Encoding.ASCII.GetBytes("_MP_", pointer);
        BinaryPrimitives.WriteUInt32LittleEndian(pointer.AsSpan(4), (uint)configAddress);
        pointer[8] = 1; // length in 16-byte paragraphs
        pointer[9] = SpecRevision;
        // Feature byte 1 = 0: a configuration table is present (no default configuration).
        // Feature byte 2 bit 7 (IMCRP) = 0: virtual wire mode, the PIC reaches the BSP through LINT0.
        pointer[10] = Checksum(pointer);

        if (memory.Write(FloatingPointerAddress, pointer) != MemoryAccessResult.Ok ||
            memory.Write(configAddress, config) != MemoryAccessResult.Ok)
        {
            throw new ArgumentException("guest RAM does not cover the MP table area (0x9FC00-0xFFFFF)", nameof(memory));
        }

        return FloatingPointerAddress;
    }

    private static byte[] BuildConfigTable(int vcpuCount)
    {
        int size = ConfigTableSize(vcpuCount);
        var t = new byte[size];
        var span = t.AsSpan();
        Encoding.ASCII.GetBytes("PCMP", span);
        BinaryPrimitives.WriteUInt16LittleEndian(span[4..], (ushort)size);
        t[6] = SpecRevision;
        Encoding.ASCII.GetBytes("RINGVSOR", span[8..16]);
        Encoding.ASCII.GetBytes("RINGVISOR PC", span[16..28]);
        BinaryPrimitives.WriteUInt32LittleEndian(span[36..], (uint)MemoryLayout.LocalApicBase);

        int at = HeaderSize;
        int count = 0;
        for (int cpu = 0; cpu < vcpuCount; cpu++)
        {
            t[at] = EntryProcessor;
            t[at + 1] = (byte)cpu;
            t[at + 2] = LocalApicVersion;
            t[at + 3] = (byte)(CpuEnabled | (cpu == 0 ? CpuBootProcessor : 0));
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 4)..], CpuSignature);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 8)..], CpuFeatures);
            at += ProcessorEntrySize;
            count++;
        }

        const byte IsaBusId = 0;
        t[at] = EntryBus;
        t[at + 1] = IsaBusId;
        Encoding.ASCII.GetBytes("ISA   ", span[(at + 2)..(at + 8)]);
        at += OtherEntrySize;
        count++;

        byte ioApicId = (byte)vcpuCount;
        t[at] = EntryIoApic;
        t[at + 1] = ioApicId;
        t[at + 2] = IoApicVersion;
        t[at + 3] = 1; // EN
        BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 4)..], (uint)MemoryLayout.IoApicBase);
        at += OtherEntrySize;
        count++;

        for (int irq = 0; irq < 16; irq++)
        {
            if (irq == CascadeIrq)
            {
                continue;
            }

            // Flags 0: polarity and trigger conform to the bus (ISA: active high, edge).
            t[at] = EntryIoInterrupt;
            t[at + 1] = InterruptInt;
            t[at + 4] = IsaBusId;
            t[at + 5] = (byte)irq;
            t[at + 6] = ioApicId;
            t[at + 7] = (byte)(irq == TimerIrq ? TimerPin : irq);
            at += OtherEntrySize;
            count++;
        }

        const byte AllLocalApics = 0xFF;
        foreach (var (type, lint) in new[] { (InterruptExtInt, 0), (InterruptNmi, 1) })
        {
            t[at] = EntryLocalInterrupt;
            t[at + 1] = type;
            t[at + 4] = IsaBusId;
            t[at + 6] = AllLocalApics;
            t[at + 7] = (byte)lint;
            at += OtherEntrySize;
            count++;
        }

        BinaryPrimitives.WriteUInt16LittleEndian(span[34..], (ushort)count);
        t[7] = Checksum(t);
        return t;
    }

    /// <summary>The byte that makes the sum of all bytes zero (MP Spec 1.4 §4.1, §4.2).</summary>
    private static byte Checksum(ReadOnlySpan<byte> data)
    {
        byte sum = 0;
        foreach (byte b in data)
        {
            sum += b;
        }

        return (byte)(0 - sum);
    }
}
