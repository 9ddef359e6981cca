// Access rights and #PF error codes (Intel SDM Vol. 3A §4.6 and §4.7) for every combination of privilege, access
// kind, page rights and the CR0.WP / CR4.SMEP / CR4.SMAP / RFLAGS.AC / EFER.NXE controls, checked against a model
// written directly from the SDM's rule list.
using Ringvisor.Emulator.Memory;
using static Ringvisor.Emulator.Tests.Memory.PageTableBuilder;

namespace Ringvisor.Emulator.Tests.Memory;

public class MmuPermissionTests
{
    public enum Privilege
    {
        Cpl0,
        Cpl3,
        ImplicitAtCpl0,
        ImplicitAtCpl3,
    }

    public static TheoryData<MemoryAccessKind, Privilege, bool, bool, bool, bool, bool> Combinations()
    {
        var data = new TheoryData<MemoryAccessKind, Privilege, bool, bool, bool, bool, bool>();
        foreach (var kind in new[] { MemoryAccessKind.Read, MemoryAccessKind.Write, MemoryAccessKind.Execute })
        {
            foreach (var priv in Enum.GetValues<Privilege>())
            {
                if (kind == MemoryAccessKind.Execute && priv is Privilege.ImplicitAtCpl0 or Privilege.ImplicitAtCpl3)
                {
                    continue; // instruction fetches are never implicit supervisor accesses
                }

                for (int bits = 0; bits < 32; bits++)
                {
                    data.Add(kind, priv, (bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0, (bits & 8) != 0, (bits & 16) != 0);
                }
            }
        }

        return data;
    }

    /// <summary>The SDM Vol. 3A §4.6.1 rules, case by case; null when the access is allowed.</summary>
    private static PageFaultErrorCode? Expected(
        MemoryAccessKind kind, bool userAccess, bool isImplicit, bool us, bool rw, bool xd,
        bool wp, bool smep, bool smap, bool ac, bool nxe)
    {
        var code = PageFaultErrorCode.Present;
        if (kind == MemoryAccessKind.Write)
        {
            code |= PageFaultErrorCode.Write;
        }

        if (userAccess)
        {
            code |= PageFaultErrorCode.User;
        }

        if (kind == MemoryAccessKind.Execute && (smep || nxe))
        {
            code |= PageFaultErrorCode.InstructionFetch;
        }

        if (xd && !nxe)
        {
            return code | PageFaultErrorCode.ReservedBit; // bit 63 is reserved when EFER.NXE = 0
        }

        bool allowed;
        if (userAccess)
        {
            allowed = kind switch
            {
                MemoryAccessKind.Read => us,
                MemoryAccessKind.Write => us && rw,
                _ => us && !xd,
            };
        }
        else
        {
            // "Data may be read from user-mode pages if SMAP = 0, or with SMAP = 1 by explicit accesses with AC = 1."
            bool smapAllows = !smap || (!isImplicit && ac);
            allowed = kind switch
            {
                MemoryAccessKind.Read => !us || smapAllows,
                MemoryAccessKind.Write => (!us || smapAllows) && (!wp || rw),
                _ => !xd && !(us && smep),
            };
        }

        return allowed ? null : code;
    }

    [Theory]
    [MemberData(nameof(Combinations))]
    public void TryTranslate_EveryPageRightsCombination_MatchesSdmRules(
        MemoryAccessKind kind, Privilege privilege, bool wp, bool smep, bool smap, bool ac, bool nxe)
    {
        using var bed = new MmuTestBed();
        bool implicitAccess = privilege is Privilege.ImplicitAtCpl0 or Privilege.ImplicitAtCpl3;
        int cpl = privilege is Privilege.Cpl3 or Privilege.ImplicitAtCpl3 ? 3 : 0;
        bool userAccess = cpl == 3 && !implicitAccess;

        // One page per combination of the leaf's U/S, R/W and XD bits (upper levels grant everything).
        for (int page = 0; page < 8; page++)
        {
            ulong flags = P | ((page & 1) != 0 ? US : 0) | ((page & 2) != 0 ? RW : 0) | ((page & 4) != 0 ? XD : 0);
            bed.Tables.Map4K(0x40_0000 + ((ulong)page << 12), 0x20_0000 + ((ulong)page << 12), flags);
        }

        ulong cr4 = (smep ? PagingState.Cr4Smep : 0) | (smap ? PagingState.Cr4Smap : 0);
        Assert.True(bed.Mmu.SetPagingState(MmuTestBed.LongMode(bed.Tables.Root, cr4, wp, cpl, ac ? PagingState.RflagsAc | 2 : 2, nxe)));

        for (int page = 0; page < 8; page++)
        {
            bool us = (page & 1) != 0, rw = (page & 2) != 0, xd = (page & 4) != 0;
            ulong linear = 0x40_0000 + ((ulong)page << 12) + 0x18;
            var expected = Expected(kind, userAccess, implicitAccess, us, rw, xd, wp, smep, smap, ac, nxe);
            bool ok = bed.Mmu.TryTranslate(linear, kind, out ulong physical, implicitAccess);
            string what = $"U/S={us} R/W={rw} XD={xd}";
            if (expected is null)
            {
                Assert.True(ok, $"{what}: unexpected fault {bed.Mmu.LastFault}");
                Assert.Equal(0x20_0018UL + ((ulong)page << 12), physical);
            }
            else
            {
                Assert.False(ok, $"{what}: expected #PF {expected}");
                Assert.Equal(new MmuFault(MmuFaultKind.PageFault, expected.Value, linear), bed.Mmu.LastFault);
            }
        }
    }

    [Fact]
    public void TryRead_UserAccessUnderSupervisorPde_FaultsBecauseRightsAreAnded()
    {
        using var bed = new MmuTestBed();
        bed.Tables.Map4K(0x40_0000, 0x20_0000, P | RW | US, upper: P | RW);
        bed.UseLongMode(cpl: 3);
        Assert.False(bed.Mmu.TryRead(0x40_0000, out byte _));
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.User, bed.Mmu.LastFault.ErrorCode);
    }

    [Fact]
    public void TryWrite_ReadOnlyPml4eWithWp_FaultsForSupervisor()
    {
        using var bed = new MmuTestBed();
        bed.Tables.Map4K(0x40_0000, 0x20_0000, P | RW | US, upper: P | US);
        bed.UseLongMode();
        Assert.False(bed.Mmu.TryWrite(0x40_0000, (byte)1));
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.Write, bed.Mmu.LastFault.ErrorCode);
    }

    [Fact]
    public void TryTranslateFetch_XdInUpperLevel_FaultsWithInstructionFetchBit()
    {
        using var bed = new MmuTestBed();
        bed.Tables.Map4K(0x40_0000, 0x20_0000, P | RW | US, upper: P | RW | US | XD);
        bed.UseLongMode();
        Assert.False(bed.Mmu.TryTranslateFetch(0x40_0000, out _));
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.InstructionFetch, bed.Mmu.LastFault.ErrorCode);
    }

    [Fact]
    public void SetPrivilege_AcToggledWithSmap_SwitchesUserPageAccessWithoutFlush()
    {
        using var bed = new MmuTestBed();
        bed.Tables.Map4K(0x40_0000, 0x20_0000);
        bed.UseLongMode(extraCr4: PagingState.Cr4Smap);
        Assert.False(bed.Mmu.TryRead(0x40_0000, out uint _));
        bed.Mmu.SetPrivilege(0, PagingState.RflagsAc | 2);
        Assert.True(bed.Mmu.TryRead(0x40_0000, out uint _));
        Assert.False(bed.Mmu.TryReadSystem(0x40_0000, out uint _)); // implicit accesses ignore AC
        bed.Mmu.SetPrivilege(0, 2);
        Assert.False(bed.Mmu.TryRead(0x40_0000, out uint _));
    }

    [Fact]
    public void SetPrivilege_CachedBySupervisor_UserAccessStillFaults()
    {
        using var bed = new MmuTestBed();
        bed.Tables.Map4K(0x40_0000, 0x20_0000, P | RW);
        bed.UseLongMode();
        Assert.True(bed.Mmu.TryWrite(0x40_0000, 5u));
        bed.Mmu.SetPrivilege(3, 2);
        Assert.False(bed.Mmu.TryRead(0x40_0000, out uint _));
        Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.User, bed.Mmu.LastFault.ErrorCode);
        bed.Mmu.SetPrivilege(0, 2);
        Assert.True(bed.Mmu.TryRead(0x40_0000, out uint v));
        Assert.Equal(5u, v);
    }

    [Fact]
    public void TryReadSystem_AtCpl3_IsSupervisorAccess()
    {
        using var bed = new MmuTestBed();
        bed.Tables.Map4K(0x40_0000, 0x20_0000, P | RW);
        bed.UseLongMode(cpl: 3);
        Assert.True(bed.Mmu.TryReadSystem(0x40_0000, out ulong _));
        Assert.False(bed.Mmu.TryRead(0x40_0000, out ulong _));
    }
}
