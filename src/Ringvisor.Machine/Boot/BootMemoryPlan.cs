// Bookkeeping of which guest-physical ranges a boot has already claimed, so that kernel segments, initrds, modules
// and boot tables never overlap one another and never leave guest RAM. Every failure is a BootImageException that
// names the file responsible.
using Ringvisor.Core.Memory;

namespace Ringvisor.Machine.Boot;

internal sealed class BootMemoryPlan
{
    private readonly List<ClaimedRange> _claims = [];

    public BootMemoryPlan(GuestMemory memory)
    {
        Memory = memory;
    }

    public GuestMemory Memory { get; }

    /// <summary>End of the RAM region that starts at 0 (below the PCI hole): the limit for 32-bit loads.</summary>
    public ulong LowRamEnd => Memory.Regions[0].GuestPhysicalAddress == 0 ? Memory.Regions[0].End : 0;

    /// <summary>Claims [start, start+size) for <paramref name="what"/>; <paramref name="file"/> is blamed on failure.</summary>
    public void Claim(ulong start, ulong size, string what, string file)
    {
        if (size == 0)
        {
            return;
        }

        if (size > ulong.MaxValue - start || !Memory.IsRam(start, size))
        {
            throw new BootImageException(file, $"{what} at {Range(start, size)} lies outside guest RAM ({DescribeRam()})");
        }

        ulong end = start + size;
        foreach (var c in _claims)
        {
            if (start < c.End && c.Start < end)
            {
                throw new BootImageException(file, $"{what} at {Range(start, size)} overlaps {c.What} at {Range(c.Start, c.End - c.Start)}");
            }
        }

        _claims.Add(new ClaimedRange(start, end, what));
    }

    /// <summary>True when [start, start+size) is RAM and free of every claim.</summary>
    public bool IsFree(ulong start, ulong size)
    {
        if (size > ulong.MaxValue - start || !Memory.IsRam(start, size))
        {
            return false;
        }

        ulong end = start + size;
        return !_claims.Any(c => start < c.End && c.Start < end);
    }

    /// <summary>Writes into claimed RAM. A failure here is a loader bug, not a property of the image.</summary>
    public void Write(ulong gpa, ReadOnlySpan<byte> data)
    {
        if (Memory.Write(gpa, data) != MemoryAccessResult.Ok)
        {
            throw new InvalidOperationException($"boot loader wrote outside guest RAM at {Range(gpa, (ulong)data.Length)}");
        }
    }

    /// <summary>Zeroes [gpa, gpa+size) in chunks (bss can exceed a span's length).</summary>
    public void Zero(ulong gpa, ulong size)
    {
        const int Chunk = 1 << 30;
        while (size > 0)
        {
            int n = (int)Math.Min(size, Chunk);
            if (Memory.Fill(gpa, n, 0) != MemoryAccessResult.Ok)
            {
                throw new InvalidOperationException($"boot loader zeroed outside guest RAM at {Range(gpa, size)}");
            }

            gpa += (ulong)n;
            size -= (ulong)n;
        }
    }

    public Span<byte> WritableSpan(ulong gpa, int length)
    {
        if (!Memory.TryGetWritableSpan(gpa, length, out var span))
        {
            throw new InvalidOperationException($"boot loader span outside guest RAM at {Range(gpa, (ulong)length)}");
        }

        return span;
    }

    public static string Range(ulong start, ulong size) => size switch
    {
        0 => $"0x{start:X}",
        _ when size - 1 > ulong.MaxValue - start => $"0x{start:X}+0x{size:X}",
        _ => $"0x{start:X}-0x{start + size - 1:X}",
    };

    private string DescribeRam() =>
        string.Join(", ", Memory.Regions.Select(r => $"0x{r.GuestPhysicalAddress:X}-0x{r.End - 1:X}"));

    private readonly record struct ClaimedRange(ulong Start, ulong End, string What);
}
