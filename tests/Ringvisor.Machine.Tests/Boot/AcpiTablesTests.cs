// RSDP → XSDT/RSDT → MADT as Linux's ACPI table code reads them, and when the loaders write and announce them.
using System.Buffers.Binary;
using System.Text;
using Ringvisor.Core.Memory;
using Ringvisor.Machine.Boot;

namespace Ringvisor.Machine.Tests.Boot;

public sealed class AcpiTablesTests : IDisposable
{
    private readonly GuestMemory _memory = GuestMemory.Create(64UL << 20);
    private readonly TempFiles _files = new();

    public void Dispose()
    {
        _memory.Dispose();
        _files.Dispose();
    }

    private static int Sum(byte[] data) => data.Aggregate(0, (s, b) => (s + b) & 0xFF);

    /// <summary>Finds the RSDP the way Linux's acpi_find_root_pointer does: "RSD PTR " on 16-byte boundaries in 0xE0000-0xFFFFF.</summary>
    private ulong ScanRsdp()
    {
        for (ulong a = 0xE0000; a < 0x100000; a += 16)
        {
            if (Encoding.ASCII.GetString(_memory.Bytes(a, 8)) == "RSD PTR ")
            {
                return a;
            }
        }

        throw new Xunit.Sdk.XunitException("no RSDP in 0xE0000-0xFFFFF");
    }

    private byte[] ReadTable(ulong address, string signature)
    {
        uint length = _memory.U32(address + 4);
        byte[] table = _memory.Bytes(address, (int)length);
        Assert.Equal(signature, Encoding.ASCII.GetString(table, 0, 4));
        Assert.Equal(0, Sum(table));
        return table;
    }

    private byte[] ReadMadt()
    {
        ulong rsdp = ScanRsdp();
        byte[] pointer = _memory.Bytes(rsdp, 36);
        Assert.Equal(0, Sum(pointer[..20]));
        Assert.Equal(0, Sum(pointer));
        Assert.Equal(2, pointer[15]);
        byte[] xsdt = ReadTable(BinaryPrimitives.ReadUInt64LittleEndian(pointer.AsSpan(24)), "XSDT");
        byte[] rsdt = ReadTable(BinaryPrimitives.ReadUInt32LittleEndian(pointer.AsSpan(16)), "RSDT");
        ulong madt = BinaryPrimitives.ReadUInt64LittleEndian(xsdt.AsSpan(36));
        Assert.Equal(madt, BinaryPrimitives.ReadUInt32LittleEndian(rsdt.AsSpan(36)));
        return ReadTable(madt, "APIC");
    }

    private static List<byte[]> Entries(byte[] madt)
    {
        var list = new List<byte[]>();
        for (int at = 44; at < madt.Length; at += madt[at + 1])
        {
            Assert.True(madt[at + 1] >= 2);
            list.Add(madt[at..(at + madt[at + 1])]);
        }

        return list;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(64)]
    public void Write_Vcpus_MadtListsEachCpuAndTheIoApic(int vcpus)
    {
        AcpiTables.Write(_memory, vcpus);
        byte[] madt = ReadMadt();

        Assert.Equal(0xFEE00000U, BinaryPrimitives.ReadUInt32LittleEndian(madt.AsSpan(36)));
        Assert.Equal(1U, BinaryPrimitives.ReadUInt32LittleEndian(madt.AsSpan(40)) & 1); // PCAT_COMPAT
        var entries = Entries(madt);
        var cpus = entries.Where(e => e[0] == 0).ToList();
        Assert.Equal(Enumerable.Range(0, vcpus), cpus.Select(c => (int)c[3]));
        Assert.All(cpus, c => Assert.Equal(1U, BinaryPrimitives.ReadUInt32LittleEndian(c.AsSpan(4)) & 1));
        var ioapic = entries.Single(e => e[0] == 1);
        Assert.Equal(vcpus, ioapic[2]);
        Assert.Equal(0xFEC00000U, BinaryPrimitives.ReadUInt32LittleEndian(ioapic.AsSpan(4)));
        Assert.Equal(0U, BinaryPrimitives.ReadUInt32LittleEndian(ioapic.AsSpan(8)));
    }

    [Fact]
    public void Write_Always_OverridesIrq0ToGsi2HighEdgeAndNmiOnLint1()
    {
        AcpiTables.Write(_memory, 2);
        var entries = Entries(ReadMadt());

        var over = entries.Single(e => e[0] == 2 && e[3] == 0);
        Assert.Equal(0, over[2]); // ISA
        Assert.Equal(0, over[3]); // IRQ 0
        Assert.Equal(2U, BinaryPrimitives.ReadUInt32LittleEndian(over.AsSpan(4)));
        Assert.Equal(0x5, BinaryPrimitives.ReadUInt16LittleEndian(over.AsSpan(8)));
        var nmi = entries.Single(e => e[0] == 4);
        Assert.Equal(0xFF, nmi[2]);
        Assert.Equal(1, nmi[5]);
    }

    [Fact]
    public void Write_Always_SciOnIrq9LevelActiveHigh()
    {
        AcpiTables.Write(_memory, 2);
        var sci = Entries(ReadMadt()).Single(e => e[0] == 2 && e[3] == AcpiTables.SciIrq);
        Assert.Equal(0, sci[2]);
        Assert.Equal(9U, BinaryPrimitives.ReadUInt32LittleEndian(sci.AsSpan(4)));
        Assert.Equal(0xD, BinaryPrimitives.ReadUInt16LittleEndian(sci.AsSpan(8)));
    }

    [Fact]
    public void Write_Always_FadtPointsAtFacsDsdtAndPmBlocks()
    {
        AcpiTables.Write(_memory, 2);
        ulong rsdp = ScanRsdp();
        byte[] xsdt = ReadTable(_memory.U64(rsdp + 24), "XSDT");
        var tables = Enumerable.Range(0, (xsdt.Length - 36) / 8)
            .Select(i => BinaryPrimitives.ReadUInt64LittleEndian(xsdt.AsSpan(36 + (8 * i))))
            .ToList();
        ulong fadtAddress = tables.Single(a => Encoding.ASCII.GetString(_memory.Bytes(a, 4)) == "FACP");
        byte[] fadt = ReadTable(fadtAddress, "FACP");

        Assert.Equal(AcpiTables.FadtSize, fadt.Length);
        uint facs = BinaryPrimitives.ReadUInt32LittleEndian(fadt.AsSpan(36));
        Assert.Equal(0U, facs % 64);
        Assert.Equal("FACS", Encoding.ASCII.GetString(_memory.Bytes(facs, 4)));
        Assert.Equal((uint)AcpiTables.FacsSize, _memory.U32(facs + 4));
        byte[] dsdt = ReadTable(BinaryPrimitives.ReadUInt32LittleEndian(fadt.AsSpan(40)), "DSDT");
        Assert.True(dsdt.Length > 36);
        Assert.Equal(AcpiTables.SciIrq, BinaryPrimitives.ReadUInt16LittleEndian(fadt.AsSpan(46)));
        Assert.Equal(0U, BinaryPrimitives.ReadUInt32LittleEndian(fadt.AsSpan(48))); // no SMI_CMD: always in ACPI mode
        Assert.Equal(AcpiTables.PmBase, BinaryPrimitives.ReadUInt32LittleEndian(fadt.AsSpan(56)));
        Assert.Equal(AcpiTables.PmBase + 4U, BinaryPrimitives.ReadUInt32LittleEndian(fadt.AsSpan(64)));
        Assert.Equal(4, fadt[88]);
        Assert.Equal(2, fadt[89]);
        Assert.Equal(0b11, BinaryPrimitives.ReadUInt16LittleEndian(fadt.AsSpan(109)) & 0b11); // legacy devices, 8042
    }

    [Fact]
    public void Write_Always_DsdtRoutesEverySlotPinToItsPciGsi()
    {
        AcpiTables.Write(_memory, 2);
        uint length = _memory.U32(AcpiTables.DsdtPhysicalAddress + 4);
        byte[] dsdt = ReadTable(AcpiTables.DsdtPhysicalAddress, "DSDT");
        Assert.Equal((int)length, dsdt.Length);

        // The host bridge: Name(_HID, EisaId("PNP0A03")).
        Assert.True(IndexOf(dsdt, [0x08, (byte)'_', (byte)'H', (byte)'I', (byte)'D', 0x0C, 0x41, 0xD0, 0x0A, 0x03]) > 0);

        // Package(4) { 0x0001FFFF, 0 (INTA#), 0, 17 }: device 1's INTA# on GSI 16 + 1.
        Assert.True(IndexOf(dsdt, [0x12, 0x0B, 0x04, 0x0C, 0xFF, 0xFF, 0x01, 0x00, 0x00, 0x00, 0x0A, 17]) > 0);

        // Device 3's INTD# (pin 3) wraps to GSI 16 + ((3 + 4 - 1) mod 4) = 18.
        Assert.True(IndexOf(dsdt, [0x12, 0x0C, 0x04, 0x0C, 0xFF, 0xFF, 0x03, 0x00, 0x0A, 0x03, 0x00, 0x0A, 18]) > 0);

        // Name(\_S5, Package(4) { 5, 5, 0, 0 }).
        Assert.True(IndexOf(dsdt, [0x08, (byte)'\\', (byte)'_', (byte)'S', (byte)'5', (byte)'_', 0x12, 0x08, 0x04, 0x0A, 5, 0x0A, 5, 0x00, 0x00]) > 0);
    }

    private static int IndexOf(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle);

    [Fact]
    public void Write_BadVcpuCount_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => AcpiTables.Write(_memory, 0));
    }

    [Fact]
    public void Load_BzImageWithAcpi_PutsRsdpIntoZeroPage()
    {
        string kernel = _files.Write("bzImage", new FakeBzImage().Build());

        var result = KernelLoader.Load(_memory, new KernelLoadOptions(kernel, [], "", 1) { Acpi = true });

        Assert.Equal(0xE0000UL, result.AcpiRsdpAddress);
        Assert.Equal(result.AcpiRsdpAddress, _memory.U64(0x7000 + 0x070)); // boot_params.acpi_rsdp_addr
        ReadMadt();
    }

    [Fact]
    public void Load_PvhWithAcpi_PutsRsdpIntoStartInfo()
    {
        var image = new ElfBuilder(is64: true) { Entry = 0x200000 }.Load(0x200000, new byte[0x100]).PvhNote(0x200000).Build();
        string kernel = _files.Write("vmlinux", image);

        var result = KernelLoader.Load(_memory, new KernelLoadOptions(kernel, [], "", 2));

        Assert.Equal(0xE0000UL, result.AcpiRsdpAddress);
        Assert.Equal(result.AcpiRsdpAddress, _memory.U64(result.BootInfoAddress + 0x20)); // hvm_start_info.rsdp_paddr
    }

    [Theory]
    [InlineData(1, null, true)]
    [InlineData(2, null, true)]
    [InlineData(1, true, true)]
    [InlineData(4, false, false)]
    public void Load_AcpiChoice_WritesTablesOnlyWhenAsked(int vcpus, bool? acpi, bool expected)
    {
        string kernel = _files.Write("bzImage", new FakeBzImage().Build());

        var result = KernelLoader.Load(_memory, new KernelLoadOptions(kernel, [], "", vcpus) { Acpi = acpi });

        Assert.Equal(expected, result.AcpiRsdpAddress != 0);
        Assert.Equal(expected ? 0xE0000UL : 0, _memory.U64(0x7000 + 0x070));
        Assert.Equal(expected, Encoding.ASCII.GetString(_memory.Bytes(0xE0000, 8)) == "RSD PTR ");
    }
}
