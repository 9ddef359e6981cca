using Ringvisor.Kvm.Native;

namespace Ringvisor.Kvm.Tests;

public class KvmCpuidTests
{
    private static KvmCpuidEntry2[] Supported() =>
    [
        new() { Function = 0, Eax = 0x1F },
        new() { Function = 1, Eax = 0x000A_0F11, Ebx = 0xFF01_0800, Ecx = 0x0000_0001, Edx = 0x1781_FBFF },
        new() { Function = 7, Index = 0, Flags = KvmCpuidEntry2.FlagSignificantIndex, Ebx = 0x219C_91A9 },
        new() { Function = 0xB, Index = 0, Flags = KvmCpuidEntry2.FlagSignificantIndex, Eax = 1, Ebx = 1, Ecx = 0x100, Edx = 0 },
        new() { Function = 0xB, Index = 1, Flags = KvmCpuidEntry2.FlagSignificantIndex, Eax = 4, Ebx = 1, Ecx = 0x201, Edx = 0 },
        new() { Function = 0x4000_0000, Eax = 0x4000_0001 },
        new() { Function = 0x4000_0001, Eax = 0x0100_7AFB },
    ];

    private static KvmCpuidEntry2 Find(KvmCpuidEntry2[] entries, uint leaf, uint subleaf = 0) =>
        Assert.Single(entries, e => e.Function == leaf && e.Index == subleaf);

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void Build_Leaf1_CarriesVcpuIndexAsApicIdAndHypervisorBit(int index)
    {
        var e = Find(KvmCpuid.Build(Supported(), index, null), 1);

        Assert.Equal((uint)index, e.Ebx >> 24);
        Assert.Equal(0x01_0800u, e.Ebx & 0xFF_FFFF);
        Assert.NotEqual(0u, e.Ecx & (1u << 31));
        Assert.Equal(1u, e.Ecx & 1);
    }

    [Fact]
    public void Build_ExtendedTopology_EveryLevelCarriesX2ApicId()
    {
        var entries = KvmCpuid.Build(Supported(), 3, null);

        Assert.Equal(3u, Find(entries, 0xB, 0).Edx);
        Assert.Equal(3u, Find(entries, 0xB, 1).Edx);
    }

    [Fact]
    public void Build_SignatureLeaf_IsKvmSignatureWithFeaturesLeafAsMaximum()
    {
        var e = Find(KvmCpuid.Build(Supported(), 0, null), 0x4000_0000);

        byte[] sig = [.. BitConverter.GetBytes(e.Ebx), .. BitConverter.GetBytes(e.Ecx), .. BitConverter.GetBytes(e.Edx)];
        Assert.Equal("KVMKVMKVM\0\0\0", System.Text.Encoding.ASCII.GetString(sig));
        Assert.Equal(0x4000_0001u, e.Eax);
    }

    [Fact]
    public void Build_FeaturesLeaf_KeepsWhatKvmReports()
    {
        Assert.Equal(0x0100_7AFBu, Find(KvmCpuid.Build(Supported(), 0, null), 0x4000_0001).Eax);
    }

    [Fact]
    public void Build_HostWithoutParavirtLeaves_AddsSignatureAndEmptyFeatures()
    {
        var entries = KvmCpuid.Build(Supported().AsSpan(0, 5), 0, null);

        Assert.Equal(KvmCpuid.SignatureEbx, Find(entries, 0x4000_0000).Ebx);
        Assert.Equal(0u, Find(entries, 0x4000_0001).Eax);
    }

    [Fact]
    public void Build_Overrides_ReplaceExistingAndAddNewLeaves()
    {
        var overrides = new Dictionary<(uint, uint), (uint, uint, uint, uint)>
        {
            [(7, 0)] = (1, 2, 3, 4),
            [(7, 1)] = (5, 6, 7, 8),
            [(0x8000_0008, 0)] = (0x3030, 0, 0, 0),
        };

        var entries = KvmCpuid.Build(Supported(), 0, overrides);

        var l70 = Find(entries, 7, 0);
        Assert.Equal((1u, 2u, 3u, 4u), (l70.Eax, l70.Ebx, l70.Ecx, l70.Edx));
        var l71 = Find(entries, 7, 1);
        Assert.Equal((5u, 6u, 7u, 8u), (l71.Eax, l71.Ebx, l71.Ecx, l71.Edx));
        Assert.Equal(KvmCpuidEntry2.FlagSignificantIndex, l71.Flags);
        var ext = Find(entries, 0x8000_0008);
        Assert.Equal(0x3030u, ext.Eax);
        Assert.Equal(0u, ext.Flags);
    }
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Build_TscDeadlineCapability_SetsLeaf1EcxBit24OnlyWhenPresent(bool cap)
    {
        var e = Find(KvmCpuid.Build(Supported(), 0, null, tscDeadlineTimer: cap), 1);

        Assert.Equal(cap, (e.Ecx & KvmCpuid.Leaf1EcxTscDeadline) != 0);
    }

    [Fact]
    public void Build_AmdTopologyLeaf_CarriesExtendedApicIdAndCoreIdPerVcpu()
    {
        KvmCpuidEntry2[] supported = [.. Supported(), new() { Function = 0x8000_001E, Eax = 0x55, Ebx = 0x0107, Ecx = 0x0302 }];

        var e = Find(KvmCpuid.Build(supported, 3, null), 0x8000_001E);

        Assert.Equal(3u, e.Eax);
        Assert.Equal(3u, e.Ebx); // core 3, one thread per core (bits 15:8 = 0)
        Assert.Equal(0u, e.Ecx); // node 0, one node per processor
    }

    [Fact]
    public void SupportedXcr0_FromLeafDSubleaf0_CombinesEdxEax()
    {
        KvmCpuidEntry2[] entries =
        [
            new() { Function = 0xD, Index = 1, Flags = KvmCpuidEntry2.FlagSignificantIndex, Eax = 0xF },
            new() { Function = 0xD, Index = 0, Flags = KvmCpuidEntry2.FlagSignificantIndex, Eax = 0x2E7, Edx = 0x1 },
        ];

        Assert.Equal(0x1_0000_02E7UL, KvmCpuid.SupportedXcr0(entries));
        Assert.Equal(1UL, KvmCpuid.SupportedXcr0(Supported()));
    }

    [Fact]
    public void PhysicalAddressBits_FromLeaf80000008_Or36WhenAbsent()
    {
        Assert.Equal(36, KvmCpuid.PhysicalAddressBits(Supported()));
        Assert.Equal(46, KvmCpuid.PhysicalAddressBits([new() { Function = 0x8000_0008, Eax = 0x302E }]));
    }

    [Fact]
    public void FirmwareMsrs_WithMtrrInCpuid_EnableWriteBackDefaultAndUncachablePciHole()
    {
        KvmCpuidEntry2[] cpuid = [new() { Function = 1, Edx = KvmCpuid.Leaf1EdxMtrr }, new() { Function = 0x8000_0008, Eax = 40 }];

        var msrs = KvmVcpu.FirmwareMsrs(cpuid).ToDictionary(m => m.Index, m => m.Value);

        Assert.Equal(0x806UL, msrs[KvmVcpu.MsrMtrrDefType]);
        Assert.Equal(0xC000_0000UL, msrs[KvmVcpu.MsrMtrrPhysBase0]);
        // 40-bit addresses: mask bits 39:30 set (a 1 GiB range), bit 11 valid.
        Assert.Equal(0xFF_C000_0800UL, msrs[KvmVcpu.MsrMtrrPhysMask0]);
        Assert.Equal(KvmVcpu.PatPowerUp, msrs[KvmVcpu.MsrPat]);
    }

    [Fact]
    public void FirmwareMsrs_WithoutMtrrInCpuid_LeavesMtrrsAlone()
    {
        var msrs = KvmVcpu.FirmwareMsrs([new() { Function = 1 }]);

        Assert.DoesNotContain(msrs, m => m.Index is KvmVcpu.MsrMtrrDefType or KvmVcpu.MsrMtrrPhysBase0 or KvmVcpu.MsrMtrrPhysMask0);
        Assert.Contains(msrs, m => m.Index == KvmVcpu.MsrMiscEnable);
    }
}
