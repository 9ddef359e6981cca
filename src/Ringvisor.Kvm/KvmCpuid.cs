// Builds a vCPU's CPUID table from what the host KVM supports (KVM_GET_SUPPORTED_CPUID): per-vCPU APIC IDs (leaves
// 1, 0xB, 0x1F and AMD's 0x8000001E), the hypervisor bit, the TSC-deadline bit where the in-kernel LAPIC has the
// timer mode, the KVM paravirtual signature leaves, then the machine's overrides. Leaf 0xD is passed through as KVM
// reports it: subleaf 0 EAX/EDX are the XCR0 bits KVM lets the guest enable, and KVM itself keeps EBX (the save-area
// size for the current XCR0) in step with the guest's XSETBV (api.rst KVM_GET_SUPPORTED_CPUID; Intel SDM Vol. 1 §13.2).
using Ringvisor.Kvm.Native;

namespace Ringvisor.Kvm;

internal static class KvmCpuid
{
    /// <summary>Leaf 1 EBX[31:24]: initial APIC ID (Intel SDM Vol. 2A, CPUID leaf 01H).</summary>
    private const int Leaf1ApicIdShift = 24;

    /// <summary>Leaf 1 ECX bit 31: reserved for hypervisor use, set by every hypervisor (AMD APM Vol. 3, CPUID Fn0000_0001_ECX).</summary>
    private const uint Leaf1EcxHypervisor = 1u << 31;

    /// <summary>Leaves 0BH and 1FH: EDX is the x2APIC ID of the current logical processor (Intel SDM Vol. 2A).</summary>
    private const uint ExtendedTopologyLeaf = 0xB;
    private const uint V2ExtendedTopologyLeaf = 0x1F;

    /// <summary>Leaf 1 ECX bit 24: TSC-deadline mode of the local APIC timer (Intel SDM Vol. 2A, CPUID leaf 01H).</summary>
    public const uint Leaf1EcxTscDeadline = 1u << 24;

    /// <summary>Leaf 1 ECX bit 26: XSAVE/XRSTOR/XSETBV/XGETBV and XCR0 (Intel SDM Vol. 2A, CPUID leaf 01H).</summary>
    public const uint Leaf1EcxXsave = 1u << 26;

    /// <summary>Leaf 1 EDX bit 12: MTRRs (Intel SDM Vol. 2A, CPUID leaf 01H).</summary>
    public const uint Leaf1EdxMtrr = 1u << 12;

    /// <summary>
    /// AMD CPUID Fn8000_001E (AMD APM Vol. 3 Appendix E.4.17): EAX = extended APIC ID, EBX[7:0] = compute unit (core)
    /// ID and EBX[15:8] = threads per core - 1, ECX[7:0] = node ID and ECX[10:8] = nodes per processor - 1. KVM
    /// reports it zeroed (it never hands out host topology), so the VMM fills it in: one thread per core, one node.
    /// </summary>
    private const uint AmdTopologyLeaf = 0x8000_001E;

    /// <summary>CPUID 8000_0008H EAX[7:0]: physical address width (Intel SDM Vol. 2A; AMD APM Vol. 3).</summary>
    private const uint AddressSizesLeaf = 0x8000_0008;

    /// <summary>The width the SDM says to assume when leaf 8000_0008H is absent (Vol. 3A §4.1.4: MAXPHYADDR is at most 36 then).</summary>
    private const int DefaultPhysicalAddressBits = 36;

    /// <summary>CPUID leaf 0DH, subleaf 0: EAX/EDX = the XCR0 bits the processor (here: KVM) supports (Intel SDM Vol. 1 §13.2).</summary>
    private const uint XsaveLeaf = 0xD;

    /// <summary>KVM_CPUID_SIGNATURE (Documentation/virt/kvm/x86/cpuid.rst): "KVMKVMKVM\0\0\0", EAX = highest leaf.</summary>
    public const uint SignatureLeaf = 0x4000_0000;

    /// <summary>KVM_CPUID_FEATURES: EAX = paravirtual features (kvm-clock, async PF, PV EOI...).</summary>
    public const uint FeaturesLeaf = 0x4000_0001;

    public const uint SignatureEbx = 0x4B4D_564B; // "KVMK"
    public const uint SignatureEcx = 0x564B_4D56; // "VMKV"
    public const uint SignatureEdx = 0x0000_004D; // "M\0\0\0"

    /// <param name="supported">KVM_GET_SUPPORTED_CPUID's table.</param>
    /// <param name="vcpuIndex">The vCPU index, which is also its APIC ID (KVM_CREATE_VCPU id).</param>
    /// <param name="overrides">The machine's leaves, applied last.</param>
    /// <param name="tscDeadlineTimer">
    /// KVM_CAP_TSC_DEADLINE_TIMER: the in-kernel LAPIC implements TSC-deadline mode. Older kernels do not report the
    /// bit in KVM_GET_SUPPORTED_CPUID and expect user space to set it (api.rst, KVM_GET_SUPPORTED_CPUID).
    /// </param>
    public static KvmCpuidEntry2[] Build(
        ReadOnlySpan<KvmCpuidEntry2> supported,
        int vcpuIndex,
        IReadOnlyDictionary<(uint Leaf, uint Subleaf), (uint Eax, uint Ebx, uint Ecx, uint Edx)>? overrides,
        bool tscDeadlineTimer = false)
    {
        var entries = new List<KvmCpuidEntry2>(supported.Length + 2);
        uint apicId = (uint)vcpuIndex;
        bool haveSignature = false, haveFeatures = false;
        foreach (var e in supported)
        {
            var entry = e;
            switch (entry.Function)
            {
                case 1:
                    entry.Ebx = (entry.Ebx & 0x00FF_FFFF) | (apicId << Leaf1ApicIdShift);
                    entry.Ecx |= Leaf1EcxHypervisor;
                    if (tscDeadlineTimer)
                    {
                        entry.Ecx |= Leaf1EcxTscDeadline;
                    }

                    break;
                case ExtendedTopologyLeaf:
                case V2ExtendedTopologyLeaf:
                    entry.Edx = apicId;
                    break;
                case AmdTopologyLeaf:
                    entry.Eax = apicId;
                    entry.Ebx = apicId & 0xFF;
                    entry.Ecx = 0;
                    break;
                case SignatureLeaf:
                    haveSignature = true;
                    SetSignature(ref entry);
                    break;
                case FeaturesLeaf:
                    haveFeatures = true;
                    break;
            }

            entries.Add(entry);
        }

        if (!haveSignature)
        {
            var sig = new KvmCpuidEntry2 { Function = SignatureLeaf };
            SetSignature(ref sig);
            entries.Add(sig);
        }

        if (!haveFeatures)
        {
            // The host reported no paravirtual features: advertise none rather than guess.
            entries.Add(new KvmCpuidEntry2 { Function = FeaturesLeaf });
        }

        if (overrides is not null)
        {
            foreach (var ((leaf, subleaf), (eax, ebx, ecx, edx)) in overrides)
            {
                ApplyOverride(entries, leaf, subleaf, eax, ebx, ecx, edx);
            }
        }

        return [.. entries];
    }

    /// <summary>The XCR0 bits KVM lets a guest enable (leaf 0DH subleaf 0 EDX:EAX); x87 only when the leaf is absent.</summary>
    public static ulong SupportedXcr0(ReadOnlySpan<KvmCpuidEntry2> entries)
    {
        foreach (var e in entries)
        {
            if (e.Function == XsaveLeaf && e.Index == 0)
            {
                return e.Eax | ((ulong)e.Edx << 32);
            }
        }

        return 1;
    }

    /// <summary>MAXPHYADDR from leaf 8000_0008H, or 36 when the leaf is absent.</summary>
    public static int PhysicalAddressBits(ReadOnlySpan<KvmCpuidEntry2> entries)
    {
        foreach (var e in entries)
        {
            if (e.Function == AddressSizesLeaf && (e.Eax & 0xFF) is >= 32 and <= 64)
            {
                return (int)(e.Eax & 0xFF);
            }
        }

        return DefaultPhysicalAddressBits;
    }

    /// <summary>True when leaf 1 advertises MTRRs (then the guest expects a BIOS to have programmed them).</summary>
    public static bool HasMtrr(ReadOnlySpan<KvmCpuidEntry2> entries)
    {
        foreach (var e in entries)
        {
            if (e.Function == 1)
            {
                return (e.Edx & Leaf1EdxMtrr) != 0;
            }
        }

        return false;
    }

    /// <summary>True when leaf 1 advertises XSAVE (so the guest may set CR4.OSXSAVE).</summary>
    public static bool HasXsave(ReadOnlySpan<KvmCpuidEntry2> entries)
    {
        foreach (var e in entries)
        {
            if (e.Function == 1)
            {
                return (e.Ecx & Leaf1EcxXsave) != 0;
            }
        }

        return false;
    }

    private static void SetSignature(ref KvmCpuidEntry2 entry)
    {
        entry.Eax = FeaturesLeaf;
        entry.Ebx = SignatureEbx;
        entry.Ecx = SignatureEcx;
        entry.Edx = SignatureEdx;
    }

    private static void ApplyOverride(List<KvmCpuidEntry2> entries, uint leaf, uint subleaf, uint eax, uint ebx, uint ecx, uint edx)
    {
        bool leafIsIndexed = false;
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (e.Function != leaf)
            {
                continue;
            }

            bool indexed = (e.Flags & KvmCpuidEntry2.FlagSignificantIndex) != 0;
            leafIsIndexed |= indexed;
            if (!indexed || e.Index == subleaf)
            {
                e.Eax = eax;
                e.Ebx = ebx;
                e.Ecx = ecx;
                e.Edx = edx;
                entries[i] = e;
                return;
            }
        }

        entries.Add(new KvmCpuidEntry2
        {
            Function = leaf,
            Index = subleaf,
            Flags = leafIsIndexed || subleaf != 0 ? KvmCpuidEntry2.FlagSignificantIndex : 0,
            Eax = eax,
            Ebx = ebx,
            Ecx = ecx,
            Edx = edx,
        });
    }
}
