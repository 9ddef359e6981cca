// ACPI tables: RSDP → RSDT/XSDT → MADT and FADT → FACS and DSDT (ACPI 6.4 §5.2.5, §5.2.7, §5.2.8, §5.2.9, §5.2.10,
// §5.2.11.1, §5.2.12). Kernels built without CONFIG_X86_MPPARSE (Debian's cloud kernels among them) ignore the MP
// table and need the MADT to see more than one CPU and the IOAPIC.
//
// With the MADT Linux routes interrupts through the IOAPIC, so it must also learn how PCI INTx reaches it: that takes
// the ACPI interpreter and a namespace (Dsdt: the PCI host bridge with its _PRT), and the interpreter in turn needs
// a FADT with the fixed PM registers (AcpiPmRegisters at PmBase, SCI on ISA IRQ 9, no SMI command port: the machine
// is always in ACPI mode) and a FACS. \_S5 lets Linux power off through PM1a_CNT.
using System.Buffers.Binary;
using System.Text;
using Ringvisor.Core.Memory;

namespace Ringvisor.Machine.Boot;

public static class AcpiTables
{
    /// <summary>ACPI 6.4 §5.2.5.1: the RSDP may lie on a 16-byte boundary in 0xE0000-0xFFFFF; Linux scans there.</summary>
    public const ulong RsdpAddress = 0xE0000;

    public const int RsdpSize = 36;
    public const int HeaderSize = 36;

    // ACPI 6.4 Table 5.20: MADT interrupt controller structure types.
    public const byte MadtLocalApic = 0;
    public const byte MadtIoApic = 1;
    public const byte MadtInterruptSourceOverride = 2;
    public const byte MadtLocalApicNmi = 4;

    /// <summary>ACPI 6.4 Table 5.19: PCAT_COMPAT, the system also has dual 8259s.</summary>
    private const uint MadtPcatCompat = 1;

    /// <summary>ACPI 6.4 Table 5.26: MPS INTI flags, active high (bits 1:0 = 01) and edge triggered (bits 3:2 = 01).</summary>
    private const ushort IntiActiveHighEdge = 0x0005;

    /// <summary>ACPI 6.4 Table 5.26: active high, level triggered (bits 3:2 = 11), as a PIIX4's SCI is wired.</summary>
    private const ushort IntiActiveHighLevel = 0x000D;

    /// <summary>I/O port of PM1a_EVT_BLK; PM1a_CNT_BLK follows it (the PIIX4 PM base QEMU uses).</summary>
    public const ushort PmBase = 0x600;

    /// <summary>The ISA IRQ of the SCI (FADT SCI_INT), as on PIIX4 boards.</summary>
    public const byte SciIrq = 9;

    public const int FadtSize = 244; // revision 3 (ACPI 2.0 layout with the X_ fields)
    public const int FacsSize = 64;

    private const ulong RsdtAddress = RsdpAddress + 0x40;
    private const ulong XsdtAddress = RsdpAddress + 0x80;
    private const ulong MadtAddress = RsdpAddress + 0x100; // up to 0x850 bytes for 254 vCPUs
    private const ulong FacsAddress = RsdpAddress + 0x1000; // 64-byte aligned (ACPI 6.4 §5.2.10)
    private const ulong FadtAddress = FacsAddress + 0x40;
    private const ulong DsdtAddress = RsdpAddress + 0x1200;

    /// <summary>ACPI 6.4 Table 5.10: IAPC_BOOT_ARCH LEGACY_DEVICES (bit 0) and 8042 (bit 1).</summary>
    private const ushort BootArchLegacyAnd8042 = 0b11;

    /// <summary>ACPI 6.4 Table 5.10: WBINVD (bit 0), PROC_C1 (bit 2), PWR_BUTTON and SLP_BUTTON absent as fixed features (bits 4, 5).</summary>
    private const uint FadtFlags = (1u << 0) | (1u << 2) | (1u << 4) | (1u << 5);

    /// <summary>Where the DSDT is written (for tests that read the namespace).</summary>
    public static ulong DsdtPhysicalAddress => DsdtAddress;

    /// <summary>Writes RSDP, RSDT, XSDT, MADT, FADT, FACS and DSDT for <paramref name="vcpuCount"/> CPUs; returns the RSDP address.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The vCPU count is outside 1..<see cref="MpTable.MaxVcpus"/>.</exception>
    /// <exception cref="ArgumentException">Guest RAM does not cover 0xE0000-0xEFFFF.</exception>
    public static ulong Write(GuestMemory memory, int vcpuCount)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (vcpuCount < 1 || vcpuCount > MpTable.MaxVcpus)
        {
            throw new ArgumentOutOfRangeException(nameof(vcpuCount), vcpuCount, $"the MADT describes 1 to {MpTable.MaxVcpus} vCPUs");
        }

        byte[] madt = BuildMadt(vcpuCount);
        byte[] aml = Dsdt.Build();
        byte[] dsdt = Table("DSDT", 2, HeaderSize + aml.Length); // revision 2: 64-bit AML integers
        aml.CopyTo(dsdt, HeaderSize);
        Seal(dsdt);
        byte[] fadt = BuildFadt();
        byte[] facs = BuildFacs();
        ulong[] entries = [MadtAddress, FadtAddress];
        byte[] rsdt = Table("RSDT", 1, HeaderSize + (4 * entries.Length));
        byte[] xsdt = Table("XSDT", 1, HeaderSize + (8 * entries.Length));
        for (int i = 0; i < entries.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(rsdt.AsSpan(HeaderSize + (4 * i)), (uint)entries[i]);
            BinaryPrimitives.WriteUInt64LittleEndian(xsdt.AsSpan(HeaderSize + (8 * i)), entries[i]);
        }

        Seal(rsdt);
        Seal(xsdt);

        var rsdp = new byte[RsdpSize];
        Encoding.ASCII.GetBytes("RSD PTR ", rsdp);
        Encoding.ASCII.GetBytes("RINGVS", rsdp.AsSpan(9, 6));
        rsdp[15] = 2; // revision 2: ACPI 2.0+ RSDP with the XSDT address
        BinaryPrimitives.WriteUInt32LittleEndian(rsdp.AsSpan(16), (uint)RsdtAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(rsdp.AsSpan(20), RsdpSize);
        BinaryPrimitives.WriteUInt64LittleEndian(rsdp.AsSpan(24), XsdtAddress);
        rsdp[8] = Checksum(rsdp.AsSpan(0, 20));
        rsdp[32] = Checksum(rsdp);

        if (memory.Write(RsdpAddress, rsdp) != MemoryAccessResult.Ok ||
            memory.Write(RsdtAddress, rsdt) != MemoryAccessResult.Ok ||
            memory.Write(XsdtAddress, xsdt) != MemoryAccessResult.Ok ||
            memory.Write(MadtAddress, madt) != MemoryAccessResult.Ok ||
            memory.Write(FacsAddress, facs) != MemoryAccessResult.Ok ||
            memory.Write(FadtAddress, fadt) != MemoryAccessResult.Ok ||
            memory.Write(DsdtAddress, dsdt) != MemoryAccessResult.Ok)
        {
            throw new ArgumentException("guest RAM does not cover the ACPI table area (0xE0000-0xEFFFF)", nameof(memory));
        }

        return RsdpAddress;
    }

    private static byte[] BuildMadt(int vcpuCount)
    {
        int size = HeaderSize + 8 + (vcpuCount * 8) + 12 + 10 + 10 + 6;
        byte[] t = Table("APIC", 5, size);
        var s = t.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s[HeaderSize..], (uint)MemoryLayout.LocalApicBase);
        BinaryPrimitives.WriteUInt32LittleEndian(s[(HeaderSize + 4)..], MadtPcatCompat);
        int at = HeaderSize + 8;
        for (int cpu = 0; cpu < vcpuCount; cpu++)
        {
            t[at] = MadtLocalApic;
            t[at + 1] = 8;
            t[at + 2] = (byte)cpu; // ACPI processor UID
            t[at + 3] = (byte)cpu; // APIC ID, as in the MP table
            BinaryPrimitives.WriteUInt32LittleEndian(s[(at + 4)..], 1); // enabled
            at += 8;
        }

        t[at] = MadtIoApic;
        t[at + 1] = 12;
        t[at + 2] = (byte)vcpuCount; // IOAPIC ID, as in the MP table
        BinaryPrimitives.WriteUInt32LittleEndian(s[(at + 4)..], (uint)MemoryLayout.IoApicBase);
        BinaryPrimitives.WriteUInt32LittleEndian(s[(at + 8)..], 0); // GSI base
        at += 12;

        // ISA IRQ 0 (PIT) arrives on GSI 2. The flags are explicit: without a FADT Linux takes the SCI to be IRQ 0 and
        // would read "conforms to bus" in an override of IRQ 0 as the SCI's level/active-low default.
        t[at] = MadtInterruptSourceOverride;
        t[at + 1] = 10;
        t[at + 2] = 0; // ISA bus
        t[at + 3] = 0; // IRQ 0
        BinaryPrimitives.WriteUInt32LittleEndian(s[(at + 4)..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(s[(at + 8)..], IntiActiveHighEdge);
        at += 10;

        // The SCI: ISA IRQ 9, level-triggered active-high (PIIX4), instead of the FADT default of level active-low.
        t[at] = MadtInterruptSourceOverride;
        t[at + 1] = 10;
        t[at + 2] = 0; // ISA bus
        t[at + 3] = SciIrq;
        BinaryPrimitives.WriteUInt32LittleEndian(s[(at + 4)..], SciIrq);
        BinaryPrimitives.WriteUInt16LittleEndian(s[(at + 8)..], IntiActiveHighLevel);
        at += 10;

        // NMI on LINT1 of every processor (UID 0xFF = all), as in the MP table's local interrupt entry.
        t[at] = MadtLocalApicNmi;
        t[at + 1] = 6;
        t[at + 2] = 0xFF;
        BinaryPrimitives.WriteUInt16LittleEndian(s[(at + 3)..], IntiActiveHighEdge);
        t[at + 5] = 1;
        Seal(t);
        return t;
    }

    /// <summary>ACPI 6.4 §5.2.9 Table 5.9, revision 3 layout (244 bytes): only the 32-bit block addresses are filled.</summary>
    private static byte[] BuildFadt()
    {
        byte[] t = Table("FACP", 3, FadtSize);
        var s = t.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s[36..], (uint)FacsAddress);   // FIRMWARE_CTRL
        BinaryPrimitives.WriteUInt32LittleEndian(s[40..], (uint)DsdtAddress);   // DSDT
        BinaryPrimitives.WriteUInt16LittleEndian(s[46..], SciIrq);              // SCI_INT
        // SMI_CMD (48) = 0: ACPI mode is always on; ACPI_ENABLE/DISABLE unused.
        BinaryPrimitives.WriteUInt32LittleEndian(s[56..], PmBase);              // PM1a_EVT_BLK
        BinaryPrimitives.WriteUInt32LittleEndian(s[64..], PmBase + AcpiPmRegisters.EventBlockLength); // PM1a_CNT_BLK
        t[88] = AcpiPmRegisters.EventBlockLength;                               // PM1_EVT_LEN
        t[89] = AcpiPmRegisters.ControlBlockLength;                             // PM1_CNT_LEN
        // No PM timer and no GPE blocks (lengths 0).
        BinaryPrimitives.WriteUInt16LittleEndian(s[96..], 101);                 // P_LVL2_LAT > 100: no C2
        BinaryPrimitives.WriteUInt16LittleEndian(s[98..], 1001);                // P_LVL3_LAT > 1000: no C3
        BinaryPrimitives.WriteUInt16LittleEndian(s[109..], BootArchLegacyAnd8042);
        BinaryPrimitives.WriteUInt32LittleEndian(s[112..], FadtFlags);
        Seal(t);
        return t;
    }

    /// <summary>ACPI 6.4 §5.2.10 Table 5.14: no waking vector, no global lock owner, version 2; the FACS has no checksum.</summary>
    private static byte[] BuildFacs()
    {
        var t = new byte[FacsSize];
        Encoding.ASCII.GetBytes("FACS", t);
        BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(4), FacsSize);
        t[32] = 2; // version
        return t;
    }

    /// <summary>A table with its standard header (ACPI 6.4 §5.2.6) filled in except the checksum.</summary>
    private static byte[] Table(string signature, byte revision, int length)
    {
        var t = new byte[length];
        Encoding.ASCII.GetBytes(signature, t);
        BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(4), (uint)length);
        t[8] = revision;
        Encoding.ASCII.GetBytes("RINGVS", t.AsSpan(10, 6));
        Encoding.ASCII.GetBytes("RINGVISR", t.AsSpan(16, 8));
        BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(24), 1);
        Encoding.ASCII.GetBytes("RVMM", t.AsSpan(28, 4));
        BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(32), 1);
        return t;
    }

    private static void Seal(byte[] table) => table[9] = Checksum(table);

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
