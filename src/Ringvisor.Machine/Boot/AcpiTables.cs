// Minimal ACPI tables describing the processors and interrupt controllers: RSDP → RSDT/XSDT → MADT (ACPI 6.4 §5.2.5,
// §5.2.7, §5.2.8, §5.2.12). Kernels built without CONFIG_X86_MPPARSE (Debian's cloud kernels among them) ignore the MP
// table and need the MADT to see more than one CPU and the IOAPIC.
//
// There is deliberately no FADT or DSDT: with no DSDT, Linux applies the MADT during setup_arch and then reports
// "Unable to load the System Description Tables" and turns the ACPI interpreter off, so PCI is still found by probing
// configuration space and interrupt routing stays as without ACPI. An ACPI namespace would have to describe the PCI
// host bridge (PNP0A03, _PRT, _CRS) before Linux could find any PCI device through it.
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

    private const ulong RsdtAddress = RsdpAddress + 0x40;
    private const ulong XsdtAddress = RsdpAddress + 0x80;
    private const ulong MadtAddress = RsdpAddress + 0x100;

    /// <summary>Writes RSDP, RSDT, XSDT and MADT for <paramref name="vcpuCount"/> CPUs; returns the RSDP address.</summary>
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
        byte[] rsdt = Table("RSDT", 1, HeaderSize + 4);
        BinaryPrimitives.WriteUInt32LittleEndian(rsdt.AsSpan(HeaderSize), (uint)MadtAddress);
        Seal(rsdt);
        byte[] xsdt = Table("XSDT", 1, HeaderSize + 8);
        BinaryPrimitives.WriteUInt64LittleEndian(xsdt.AsSpan(HeaderSize), MadtAddress);
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
            memory.Write(MadtAddress, madt) != MemoryAccessResult.Ok)
        {
            throw new ArgumentException("guest RAM does not cover the ACPI table area (0xE0000-0xEFFFF)", nameof(memory));
        }

        return RsdpAddress;
    }

    private static byte[] BuildMadt(int vcpuCount)
    {
        int size = HeaderSize + 8 + (vcpuCount * 8) + 12 + 10 + 6;
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

        // NMI on LINT1 of every processor (UID 0xFF = all), as in the MP table's local interrupt entry.
        t[at] = MadtLocalApicNmi;
        t[at + 1] = 6;
        t[at + 2] = 0xFF;
        BinaryPrimitives.WriteUInt16LittleEndian(s[(at + 3)..], IntiActiveHighEdge);
        t[at + 5] = 1;
        Seal(t);
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
