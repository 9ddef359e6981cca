// The two BIOS data area words a kernel reads to find the top of base memory and the EBDA (IBM PC BIOS
// data area, 0x400-0x4FF). Linux uses them to reserve the EBDA/BIOS region and to locate the MP table.
using System.Buffers.Binary;

namespace Ringvisor.Machine.Boot;

internal static class BiosDataArea
{
    public static void Write(BootMemoryPlan plan, string file)
    {
        plan.Claim(0, BootLayout.GdtAddress, "the interrupt vector table and BIOS data area", file);
        Span<byte> word = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(word, (ushort)(BootLayout.EbdaAddress / 1024));
        plan.Write(BootLayout.BdaBaseMemoryKib, word);
        BinaryPrimitives.WriteUInt16LittleEndian(word, (ushort)(BootLayout.EbdaAddress >> 4));
        plan.Write(BootLayout.BdaEbdaSegment, word);
    }

    /// <summary>Claims the EBDA and the VGA/BIOS hole (reserved in the memory map) and writes the MP table there.</summary>
    public static ulong WriteMpTable(BootMemoryPlan plan, int vcpuCount, string file)
    {
        plan.Claim(BootLayout.EbdaAddress, BootLayout.HighMemoryAddress - BootLayout.EbdaAddress, "the EBDA/VGA/BIOS area", file);
        return MpTable.Write(plan.Memory, vcpuCount);
    }
}
