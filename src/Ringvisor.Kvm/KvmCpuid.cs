// Builds a vCPU's CPUID table from what the host KVM supports (KVM_GET_SUPPORTED_CPUID): per-vCPU APIC IDs, the
// hypervisor bit, the KVM paravirtual signature leaves, then the machine's overrides.
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

    /// <summary>KVM_CPUID_SIGNATURE (Documentation/virt/kvm/x86/cpuid.rst): "KVMKVMKVM\0\0\0", EAX = highest leaf.</summary>
    public const uint SignatureLeaf = 0x4000_0000;

    /// <summary>KVM_CPUID_FEATURES: EAX = paravirtual features (kvm-clock, async PF, PV EOI...).</summary>
    public const uint FeaturesLeaf = 0x4000_0001;

    public const uint SignatureEbx = 0x4B4D_564B; // "KVMK"
    public const uint SignatureEcx = 0x564B_4D56; // "VMKV"
    public const uint SignatureEdx = 0x0000_004D; // "M\0\0\0"

    public static KvmCpuidEntry2[] Build(
        ReadOnlySpan<KvmCpuidEntry2> supported,
        int vcpuIndex,
        IReadOnlyDictionary<(uint Leaf, uint Subleaf), (uint Eax, uint Ebx, uint Ecx, uint Edx)>? overrides)
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
                    break;
                case ExtendedTopologyLeaf:
                case V2ExtendedTopologyLeaf:
                    entry.Edx = apicId;
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
