// Guest-physical accesses: RAM, the per-vCPU hook (LAPIC page), the MMIO bus (split into naturally aligned
// accesses of 1, 2, 4 or 8 bytes, as a bus carries them), and all-ones / dropped for unclaimed addresses.
using System.Runtime.InteropServices;
using Ringvisor.Core.Memory;

namespace Ringvisor.Emulator.Memory;

public sealed unsafe partial class Mmu
{
    /// <summary>
    /// Reads guest-physical memory as this vCPU sees it (its hook first, then RAM, then the MMIO bus; unclaimed bytes
    /// read as 0xFF). For the page walker's peers: pvclock, VMX structures, debugging.
    /// </summary>
    public void ReadPhysical(ulong physical, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            int n = (int)Math.Min((ulong)destination.Length, PageSize - (physical & PageOffsetMask));
            var part = destination[..n];
            if (_hook is { } hook && hook.Claims(physical))
            {
                ReadDevice(physical, part);
            }
            else if (_memory.TryGetSpan(physical, n, out var ram))
            {
                ram.CopyTo(part);
            }
            else
            {
                ReadDevice(physical, part);
            }

            destination = destination[n..];
            physical += (ulong)n;
        }
    }

    /// <summary>Writes guest-physical memory as this vCPU would (marks dirty pages, reports code-page writes).</summary>
    public void WritePhysical(ulong physical, ReadOnlySpan<byte> source)
    {
        while (!source.IsEmpty)
        {
            int n = (int)Math.Min((ulong)source.Length, PageSize - (physical & PageOffsetMask));
            var part = source[..n];
            if (_hook is { } hook && hook.Claims(physical))
            {
                WriteDevice(physical, part);
            }
            else if (_memory.TryGetWritableSpan(physical, n, out var ram))
            {
                part.CopyTo(ram);
                _code.NotifyWrite(physical);
            }
            else
            {
                WriteDevice(physical, part);
            }

            source = source[n..];
            physical += (ulong)n;
        }
    }

    /// <summary>A non-RAM (or hooked) access within one page, split into naturally aligned bus-sized pieces.</summary>
    private void ReadDevice(ulong physical, Span<byte> destination)
    {
        var hook = _hook is { } h && h.Claims(physical) ? h : null;
        while (!destination.IsEmpty)
        {
            int n = NaturalChunk(physical, destination.Length);
            var part = destination[..n];
            if (hook is not null)
            {
                hook.Read(physical, part);
            }
            else
            {
                _deviceAccesses++;
                _ = _mmio.Read(physical, part); // unclaimed: the bus fills all ones
            }

            destination = destination[n..];
            physical += (ulong)n;
        }
    }

    private void WriteDevice(ulong physical, ReadOnlySpan<byte> source)
    {
        var hook = _hook is { } h && h.Claims(physical) ? h : null;
        while (!source.IsEmpty)
        {
            int n = NaturalChunk(physical, source.Length);
            var part = source[..n];
            if (hook is not null)
            {
                hook.Write(physical, part);
            }
            else
            {
                _deviceAccesses++;
                _ = _mmio.Write(physical, part); // unclaimed: the bus drops it
            }

            source = source[n..];
            physical += (ulong)n;
        }
    }

    /// <summary>The largest of 8, 4, 2, 1 that fits in <paramref name="remaining"/> and to which <paramref name="physical"/> is aligned.</summary>
    private static int NaturalChunk(ulong physical, int remaining)
    {
        int n = 8;
        while (n > remaining || (physical & (ulong)(n - 1)) != 0)
        {
            n >>= 1;
        }

        return n;
    }

    /// <summary>Reads the four PAE PDPTEs at CR3[31:5] and checks their reserved bits (SDM Vol. 3A §4.4.1).</summary>
    private bool TryReadPdptes(ulong cr3, Span<ulong> pdptes)
    {
        ulong table = cr3 & 0xFFFF_FFE0;
        Span<byte> raw = stackalloc byte[32];
        if (_memory.Read(table, raw) != MemoryAccessResult.Ok)
        {
            raw.Fill(0xFF); // not RAM: the bus returns all ones, which has reserved bits set
        }

        bool ok = true;
        for (int i = 0; i < 4; i++)
        {
            ulong p = MemoryMarshal.Read<ulong>(raw[(i * 8)..]);
            pdptes[i] = p;
            if ((p & PtePresent) != 0 && (p & PdpteReservedMask) != 0)
            {
                ok = false;
            }
        }

        return ok;
    }
}
