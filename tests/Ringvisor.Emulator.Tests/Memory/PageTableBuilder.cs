// Builds guest page tables for the MMU tests directly in a GuestMemory: 4-level, PAE and 32-bit formats
// (Intel SDM Vol. 3A §4.3-§4.5).
using Ringvisor.Core.Memory;

namespace Ringvisor.Emulator.Tests.Memory;

internal sealed class PageTableBuilder
{
    public const ulong P = 1UL << 0;
    public const ulong RW = 1UL << 1;
    public const ulong US = 1UL << 2;
    public const ulong A = 1UL << 5;
    public const ulong D = 1UL << 6;
    public const ulong PS = 1UL << 7;
    public const ulong G = 1UL << 8;
    public const ulong XD = 1UL << 63;

    /// <summary>Flags of non-leaf entries created on demand.</summary>
    public const ulong Upper = P | RW | US;

    /// <summary>Frame bits for MAXPHYADDR 40, so tests can set higher (reserved) bits in table pointers.</summary>
    private const ulong FrameMask = 0x0000_00FF_FFFF_F000;
    private readonly GuestMemory _memory;
    private ulong _next;

    public PageTableBuilder(GuestMemory memory, ulong tableArea = 0x10_0000)
    {
        _memory = memory;
        _next = tableArea;
        Root = AllocateTable();
    }

    /// <summary>The PML4 (4-level), the PDPT (PAE, 32-byte table at the start of a page) or the page directory (32-bit).</summary>
    public ulong Root { get; }

    public ulong AllocateTable()
    {
        ulong t = _next;
        _next += 0x1000;
        Assert.Equal(MemoryAccessResult.Ok, _memory.Fill(t, 0x1000, 0));
        return t;
    }

    public ulong Read64(ulong physical)
    {
        Assert.True(_memory.TryRead(physical, out ulong v));
        return v;
    }

    public void Write64(ulong physical, ulong value) => Assert.True(_memory.TryWrite(physical, value));

    public uint Read32(ulong physical)
    {
        Assert.True(_memory.TryRead(physical, out uint v));
        return v;
    }

    public void Write32(ulong physical, uint value) => Assert.True(_memory.TryWrite(physical, value));

    // ------------------------------------------------------------------ 4-level

    /// <summary>Address of the 4-level entry at <paramref name="level"/> (4 = PML4E … 1 = PTE) for <paramref name="linear"/>, creating tables above it with <paramref name="upper"/>.</summary>
    public ulong Entry64(ulong linear, int level, ulong upper = Upper)
    {
        ulong table = Root;
        for (int l = 4; l > level; l--)
        {
            ulong slot = table + ((linear >> (12 + (9 * (l - 1)))) & 0x1FF) * 8;
            ulong e = Read64(slot);
            if ((e & P) == 0)
            {
                ulong t = AllocateTable();
                e = t | upper;
                Write64(slot, e);
            }

            table = e & FrameMask;
        }

        return table + ((linear >> (12 + (9 * (level - 1)))) & 0x1FF) * 8;
    }

    public ulong Map4K(ulong linear, ulong physical, ulong flags = P | RW | US, ulong upper = Upper)
    {
        ulong slot = Entry64(linear, 1, upper);
        Write64(slot, physical | flags);
        return slot;
    }

    public ulong Map2M(ulong linear, ulong physical, ulong flags = P | RW | US, ulong upper = Upper)
    {
        ulong slot = Entry64(linear, 2, upper);
        Write64(slot, physical | flags | PS);
        return slot;
    }

    public ulong Map1G(ulong linear, ulong physical, ulong flags = P | RW | US, ulong upper = Upper)
    {
        ulong slot = Entry64(linear, 3, upper);
        Write64(slot, physical | flags | PS);
        return slot;
    }

    // ------------------------------------------------------------------ PAE (Root is the PDPT)

    public ulong EntryPae(ulong linear, int level, ulong upper = Upper)
    {
        ulong pdpteSlot = Root + ((linear >> 30) & 3) * 8;
        if (level == 3)
        {
            return pdpteSlot;
        }

        ulong pdpte = Read64(pdpteSlot);
        if ((pdpte & P) == 0)
        {
            pdpte = AllocateTable() | P; // PDPTE: only P and the address; R/W and U/S are reserved there
            Write64(pdpteSlot, pdpte);
        }

        ulong pdeSlot = (pdpte & FrameMask) + ((linear >> 21) & 0x1FF) * 8;
        if (level == 2)
        {
            return pdeSlot;
        }

        ulong pde = Read64(pdeSlot);
        if ((pde & P) == 0)
        {
            pde = AllocateTable() | upper;
            Write64(pdeSlot, pde);
        }

        return (pde & FrameMask) + ((linear >> 12) & 0x1FF) * 8;
    }

    public ulong MapPae4K(ulong linear, ulong physical, ulong flags = P | RW | US, ulong upper = Upper)
    {
        ulong slot = EntryPae(linear, 1, upper);
        Write64(slot, physical | flags);
        return slot;
    }

    public ulong MapPae2M(ulong linear, ulong physical, ulong flags = P | RW | US)
    {
        ulong slot = EntryPae(linear, 2);
        Write64(slot, physical | flags | PS);
        return slot;
    }

    // ------------------------------------------------------------------ 32-bit (Root is the page directory)

    public ulong Entry32(ulong linear, int level, uint upper = (uint)Upper)
    {
        ulong pdeSlot = Root + ((linear >> 22) & 0x3FF) * 4;
        if (level == 2)
        {
            return pdeSlot;
        }

        uint pde = Read32(pdeSlot);
        if ((pde & P) == 0)
        {
            pde = (uint)AllocateTable() | upper;
            Write32(pdeSlot, pde);
        }

        return (pde & 0xFFFF_F000UL) + ((linear >> 12) & 0x3FF) * 4;
    }

    public ulong Map32_4K(ulong linear, ulong physical, uint flags = (uint)(P | RW | US), uint upper = (uint)Upper)
    {
        ulong slot = Entry32(linear, 1, upper);
        Write32(slot, (uint)physical | flags);
        return slot;
    }

    /// <summary>A 4 MiB page with PSE-36: physical bits 39:32 go to PDE bits 20:13.</summary>
    public ulong Map32_4M(ulong linear, ulong physical, uint flags = (uint)(P | RW | US))
    {
        ulong slot = Entry32(linear, 2);
        uint high = (uint)((physical >> 32) & 0xFF) << 13;
        Write32(slot, (uint)(physical & 0xFFC0_0000) | high | flags | (uint)PS);
        return slot;
    }
}
