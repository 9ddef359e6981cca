// MP Spec 1.4 floating pointer and configuration table: checksums, entry counts and contents for 1, 4 and many vCPUs.
using System.Buffers.Binary;
using System.Text;
using Ringvisor.Core.Memory;
using Ringvisor.Machine.Boot;

namespace Ringvisor.Machine.Tests.Boot;

public sealed class MpTableTests : IDisposable
{
    private readonly GuestMemory _memory = GuestMemory.Create(16UL << 20);

    public void Dispose() => _memory.Dispose();

    private static int Sum(byte[] data) => data.Aggregate(0, (s, b) => (s + b) & 0xFF);

    /// <summary>Finds the floating pointer the way Linux does: a 16-byte aligned "_MP_" in the last KiB of base memory.</summary>
    private ulong ScanFloatingPointer()
    {
        for (ulong a = 0x9FC00; a < 0xA0000; a += 16)
        {
            if (Encoding.ASCII.GetString(_memory.Bytes(a, 4)) == "_MP_")
            {
                return a;
            }
        }

        throw new Xunit.Sdk.XunitException("no MP floating pointer in 0x9FC00-0x9FFFF");
    }

    private (byte[] Table, List<byte[]> Entries) ReadConfig(out ulong configAddress)
    {
        ulong fp = ScanFloatingPointer();
        byte[] pointer = _memory.Bytes(fp, 16);
        Assert.Equal(0, Sum(pointer));
        Assert.Equal(1, pointer[8]); // length in paragraphs
        Assert.Equal(4, pointer[9]); // revision 1.4
        Assert.Equal(0, pointer[11]); // a configuration table is present
        configAddress = BinaryPrimitives.ReadUInt32LittleEndian(pointer.AsSpan(4));

        ushort length = _memory.U16(configAddress + 4);
        byte[] table = _memory.Bytes(configAddress, length);
        Assert.Equal("PCMP", Encoding.ASCII.GetString(table, 0, 4));
        Assert.Equal(0, Sum(table));
        Assert.Equal(0xFEE00000U, BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(36)));

        var entries = new List<byte[]>();
        int at = 44;
        int count = BinaryPrimitives.ReadUInt16LittleEndian(table.AsSpan(34));
        for (int i = 0; i < count; i++)
        {
            int size = table[at] == 0 ? 20 : 8;
            entries.Add(table[at..(at + size)]);
            at += size;
        }

        Assert.Equal(length, at);
        return (table, entries);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void Write_FewVcpus_TableInEbdaWithValidChecksumsAndCounts(int vcpus)
    {
        ulong fp = MpTable.Write(_memory, vcpus);

        Assert.Equal(0x9FC00UL, fp);
        var (_, entries) = ReadConfig(out ulong config);
        Assert.InRange(config, 0x9FC10UL, 0x9FFFFUL);
        Assert.Equal(vcpus, entries.Count(e => e[0] == 0));
        Assert.Equal(1, entries.Count(e => e[0] == 1));
        Assert.Equal(1, entries.Count(e => e[0] == 2));
        Assert.Equal(15, entries.Count(e => e[0] == 3));
        Assert.Equal(2, entries.Count(e => e[0] == 4));
        // Entries are sorted by type (MP Spec 1.4 §4.3).
        Assert.Equal(entries.Select(e => e[0]).Order(), entries.Select(e => e[0]));
    }

    [Fact]
    public void Write_FourVcpus_ProcessorEntriesHaveIndexApicIdsAndOneBsp()
    {
        MpTable.Write(_memory, 4);
        var (_, entries) = ReadConfig(out _);

        var cpus = entries.Where(e => e[0] == 0).ToList();
        Assert.Equal([0, 1, 2, 3], cpus.Select(c => (int)c[1]));
        Assert.All(cpus, c => Assert.Equal(1, c[3] & 1)); // enabled
        Assert.Equal([2, 0, 0, 0], cpus.Select(c => c[3] & 2)); // BSP flag only on APIC ID 0
    }

    [Fact]
    public void Write_FourVcpus_IsaBusIoApicAndInterruptRouting()
    {
        MpTable.Write(_memory, 4);
        var (_, entries) = ReadConfig(out _);

        var bus = entries.Single(e => e[0] == 1);
        Assert.Equal("ISA   ", Encoding.ASCII.GetString(bus, 2, 6));

        var ioapic = entries.Single(e => e[0] == 2);
        Assert.Equal(4, ioapic[1]); // id = vCPU count
        Assert.Equal(1, ioapic[3] & 1); // enabled
        Assert.Equal(0xFEC00000U, BinaryPrimitives.ReadUInt32LittleEndian(ioapic.AsSpan(4)));

        var irqs = entries.Where(e => e[0] == 3).ToDictionary(e => (int)e[5]);
        Assert.Equal(2, irqs[0][7]); // IRQ0 (PIT) -> pin 2
        Assert.False(irqs.ContainsKey(2)); // the cascade IRQ has no entry: its pin carries IRQ0
        foreach (int irq in Enumerable.Range(1, 15).Where(i => i != 2))
        {
            Assert.Equal(irq, irqs[irq][7]);
        }

        Assert.All(irqs.Values, e =>
        {
            Assert.Equal(0, e[1]); // INT
            Assert.Equal(bus[1], e[4]); // from the ISA bus
            Assert.Equal(4, e[6]); // to the IOAPIC
        });

        var lints = entries.Where(e => e[0] == 4).ToList();
        var extint = lints.Single(e => e[1] == 3);
        var nmi = lints.Single(e => e[1] == 1);
        Assert.Equal(0, extint[7]); // ExtINT on LINT0
        Assert.Equal(1, nmi[7]); // NMI on LINT1
        Assert.Equal(0xFF, extint[6]); // all local APICs
    }

    [Fact]
    public void Write_64Vcpus_ConfigTableMovesToBiosArea()
    {
        MpTable.Write(_memory, 64);
        var (_, entries) = ReadConfig(out ulong config);

        Assert.Equal(0xF0000UL, config);
        Assert.Equal(64, entries.Count(e => e[0] == 0));
        Assert.Equal(64, entries.Single(e => e[0] == 2)[1]);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(255)]
    public void Write_VcpuCountOutOfRange_Throws(int vcpus)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MpTable.Write(_memory, vcpus));
    }
}
