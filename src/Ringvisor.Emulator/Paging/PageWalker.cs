// Page-table walks (Intel SDM Vol. 3A §4.3 32-bit, §4.4 PAE, §4.5 4-level paging) with permission checks (§4.6) and
// accessed/dirty updates (§4.8) done with locked operations on the guest's tables, as the hardware does.
// This is the engine core's own walker; the Memory/ MMU helper's richer implementation may replace it.
using System.Runtime.CompilerServices;
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator.Paging;

internal static unsafe class PageWalker
{
    private const ulong Present = 1, Writable = 2, UserBit = 4, Accessed = 0x20, Dirty = 0x40, LargePage = 0x80;
    private const ulong NxBit = 1UL << 63;

    // #PF error-code bits (SDM Vol. 3A §4.7).
    private const uint ErrPresent = 1, ErrWrite = 2, ErrUser = 4, ErrReserved = 8, ErrFetch = 16;
    private const uint FaultMarker = 1U << 31;

    // MAXPHYADDR = 40 (CPUID 0x80000008): address bits 12..39 of an entry.
    private const ulong AddrMask = 0x0000_00FF_FFFF_F000;

    /// <summary>Returns 0 and the physical address, or FaultMarker | #PF error code.</summary>
    public static uint Walk(Cpu cpu, ulong la, int kind, bool user, out ulong pa)
    {
        pa = 0;
        if (!cpu.PagingEnabled)
        {
            pa = cpu.LongMode ? la : (uint)la;
            return 0;
        }

        bool write = kind == Cpu.AccessWrite;
        bool nxe = (cpu.Efer & Cpu.EferNxe) != 0;
        uint baseErr = (write ? ErrWrite : 0) | (user ? ErrUser : 0) | (kind == Cpu.AccessExec && nxe ? ErrFetch : 0);
        bool wp = (cpu.Cr0 & Cpu.Cr0Wp) != 0;
        bool rw = true, us = true, nx = false;

        if ((cpu.Cr4 & Cpu.Cr4Pae) == 0)
        {
            // 32-bit paging: 4-byte entries, optional 4 MiB pages with CR4.PSE.
            ulong pdeAddr = (cpu.Cr3 & 0xFFFF_F000) + (((la >> 22) & 0x3FF) << 2);
            uint* pde = (uint*)cpu.PhysRam(pdeAddr, 4);
            if (pde == null || (*pde & Present) == 0)
            {
                return FaultMarker | baseErr;
            }

            rw &= (*pde & Writable) != 0;
            us &= (*pde & UserBit) != 0;
            if ((*pde & LargePage) != 0 && (cpu.Cr4 & Cpu.Cr4Pse) != 0)
            {
                if (!Allowed(rw, us, nx, kind, user, wp))
                {
                    return FaultMarker | baseErr | ErrPresent;
                }

                SetAd32(pde, write);
                // PSE-36: PDE bits 13..20 are physical address bits 32..39.
                ulong high = ((ulong)(*pde >> 13) & 0xFF) << 32;
                pa = high | (*pde & 0xFFC0_0000) | (la & 0x3F_FFFF);
                return 0;
            }

            uint* pte = (uint*)cpu.PhysRam((*pde & 0xFFFF_F000) + (((la >> 12) & 0x3FF) << 2), 4);
            if (pte == null || (*pte & Present) == 0)
            {
                return FaultMarker | baseErr;
            }

            rw &= (*pte & Writable) != 0;
            us &= (*pte & UserBit) != 0;
            if (!Allowed(rw, us, nx, kind, user, wp))
            {
                return FaultMarker | baseErr | ErrPresent;
            }

            SetAd32(pde, false);
            SetAd32(pte, write);
            pa = (*pte & 0xFFFF_F000) | (la & 0xFFF);
            return 0;
        }

        ulong* entry;
        int level;
        ulong table;
        ulong reservedHigh = nxe ? 0 : NxBit;
        if (cpu.LongMode)
        {
            table = cpu.Cr3 & AddrMask;
            level = 4;
        }
        else
        {
            // PAE: the PDPTE is read at walk time (real CPUs cache the four PDPTEs at the CR3 load).
            ulong* pdpte = (ulong*)cpu.PhysRam((cpu.Cr3 & 0xFFFF_FFE0) + (((la >> 30) & 3) << 3), 8);
            if (pdpte == null || (*pdpte & Present) == 0)
            {
                return FaultMarker | baseErr;
            }

            table = *pdpte & AddrMask;
            level = 2;
        }

        while (true)
        {
            int shift = 12 + 9 * (level - 1);
            entry = (ulong*)cpu.PhysRam(table + (((la >> shift) & 0x1FF) << 3), 8);
            if (entry == null)
            {
                return FaultMarker | baseErr;
            }

            ulong e = Volatile.Read(ref *entry);
            if ((e & Present) == 0)
            {
                return FaultMarker | baseErr;
            }

            if ((e & reservedHigh) != 0 || (e & 0x000F_FF00_0000_0000) != 0)
            {
                return FaultMarker | baseErr | ErrPresent | ErrReserved;
            }

            rw &= (e & Writable) != 0;
            us &= (e & UserBit) != 0;
            nx |= nxe && (e & NxBit) != 0;
            bool leaf = level == 1 || ((e & LargePage) != 0 && level <= 3);
            if (leaf)
            {
                if (!Allowed(rw, us, nx, kind, user, wp))
                {
                    return FaultMarker | baseErr | ErrPresent;
                }

                SetAd64(entry, write);
                ulong pageMask = (1UL << shift) - 1;
                pa = ((e & AddrMask) & ~pageMask) | (la & pageMask);
                return 0;
            }

            SetAd64(entry, false);
            table = e & AddrMask;
            level--;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Allowed(bool rw, bool us, bool nx, int kind, bool user, bool wp)
    {
        if (user && !us)
        {
            return false;
        }

        if (kind == Cpu.AccessWrite && !rw && (user || wp))
        {
            return false;
        }

        return !(kind == Cpu.AccessExec && nx);
    }

    private static void SetAd32(uint* e, bool dirty)
    {
        uint bits = (uint)(Accessed | (dirty ? Dirty : 0));
        if ((*e & bits) != bits)
        {
            // SAFETY: e points into guest RAM (PhysRam checked the 4-byte range); locked OR like the hardware's update.
            Interlocked.Or(ref Unsafe.AsRef<uint>(e), bits);
        }
    }

    private static void SetAd64(ulong* e, bool dirty)
    {
        ulong bits = Accessed | (dirty ? Dirty : 0);
        if ((*e & bits) != bits)
        {
            // SAFETY: e points into guest RAM (PhysRam checked the 8-byte range); locked OR like the hardware's update.
            Interlocked.Or(ref Unsafe.AsRef<ulong>(e), bits);
        }
    }
}
