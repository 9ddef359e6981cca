// CPUID (SDM Vol. 2A CPUID, Tables 3-8..3-20): one consistent model that advertises exactly what this interpreter
// implements, plus KVM's paravirtual leaves (Documentation/virt/kvm/x86/cpuid.rst).
using Ringvisor.Emulator.Memory;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    private const uint MaxBasicLeaf = 0x7;
    private const uint MaxExtendedLeaf = 0x8000_0008;

    // Leaf 1 EDX (SDM Table 3-11).
    private const uint Fpu = 1 << 0, De = 1 << 2, Pse = 1 << 3, Tsc = 1 << 4, Msr = 1 << 5, Pae = 1 << 6, Cx8 = 1 << 8;
    private const uint Apic = 1 << 9, Sep = 1 << 11, Pge = 1 << 13, Cmov = 1 << 15, Pat = 1 << 16, Pse36 = 1 << 17;
    private const uint Clfsh = 1 << 19, Mmx = 1 << 23, Fxsr = 1 << 24, Sse = 1 << 25, Sse2 = 1 << 26;

    // IA32_APIC_BASE bit 11: the APIC's global enable (SDM Vol. 3A Figure 11-5).
    private const ulong ApicBaseGlobalEnable = 1UL << 11;

    // Leaf 1 ECX (SDM Table 3-10).
    private const uint Sse3 = 1 << 0, Ssse3 = 1 << 9, Cx16 = 1 << 13, Popcnt = 1 << 23, TscDeadline = 1 << 24, Hypervisor = 1U << 31;

    // Leaf 7 subleaf 0 EDX (SDM Table 3-8): IA32_ARCH_CAPABILITIES MSR present.
    private const uint ArchCapabilities = 1U << 29;

    // CPUID.(EAX=7,ECX=0):EDX bit 26: IBRS and IBPB (IA32_SPEC_CTRL, IA32_PRED_CMD); bit 27: STIBP.
    private const uint SpecCtrl = 1U << 26;
    private const uint Stibp = 1U << 27;

    // Leaf 7 subleaf 0 EBX (SDM Table 3-8): SMEP (bit 7) and SMAP (bit 20), both enforced by Memory/Mmu. PCID, PKU and
    // LA57 are not: the MMU does not model them.
    private const uint Smep = 1U << 7, Smap = 1U << 20;

    // Leaf 0x80000001 (SDM Table 3-20).
    private const uint LahfLm = 1 << 0, Syscall = 1 << 11, Nx = 1 << 20, Rdtscp = 1 << 27, Lm = 1 << 29;

    // KVM paravirtual features (cpuid.rst): KVM_FEATURE_CLOCKSOURCE2 = bit 3, KVM_FEATURE_CLOCKSOURCE_STABLE_BIT = bit 24.
    private const uint KvmFeatureClocksource2 = 1 << 3, KvmFeatureClocksourceStable = 1 << 24;

    /// <summary>True when the SIMD executor is present: x87/MMX/SSE bits are only advertised then.</summary>
    internal static bool SimdAvailable => SimdBridge.Available;

    internal (uint Eax, uint Ebx, uint Ecx, uint Edx) Cpuid(uint leaf, uint subleaf)
    {
        if (_host.CpuidOverrides is { } o && o.TryGetValue((leaf, subleaf), out var ov))
        {
            return ov;
        }

        if (leaf is > MaxBasicLeaf and < 0x4000_0000)
        {
            leaf = MaxBasicLeaf;
        }

        switch (leaf)
        {
            case 0:
                // "GenuineIntel" in EBX, EDX, ECX.
                return (MaxBasicLeaf, 0x756E_6547, 0x6C65_746E, 0x4965_6E69);
            case 1:
                {
                    uint edx = De | Pse | Tsc | Msr | Pae | Cx8 | Sep | Pge | Cmov | Pat | Pse36 | Clfsh;
                    uint ecx = Cx16 | Popcnt | Hypervisor;
                    if (_apic is not null)
                    {
                        // The local APIC implements IA32_TSC_DEADLINE against this CPU's TSC clock. The APIC bit
                        // follows IA32_APIC_BASE.EN: clearing it hides the APIC from CPUID (SDM Vol. 3A §11.4.3).
                        ecx |= TscDeadline;
                        if ((ReadApicBase() & ApicBaseGlobalEnable) != 0)
                        {
                            edx |= Apic;
                        }
                    }

                    if (SimdAvailable)
                    {
                        edx |= Fpu | Mmx | Fxsr | Sse | Sse2;
                        ecx |= Sse3 | Ssse3;
                    }

                    // Family 6, model 0x0F, stepping 1. EBX: APIC ID [31:24], logical count [23:16], CLFLUSH 8 * 8 bytes.
                    uint ebx = ((uint)_index << 24) | (1u << 16) | (8u << 8);
                    return (0x0000_06F1, ebx, ecx, edx);
                }

            case 2:
                // One iteration, no cache descriptors (0xFF would point at leaf 4).
                return (0x0000_0001, 0, 0, 0);
            case 0x4000_0000:
                // "KVMKVMKVM\0\0\0": Linux then uses kvm-clock.
                return (0x4000_0001, 0x4B4D_564B, 0x564B_4D56, 0x0000_004D);
            case 0x4000_0001:
                return (KvmFeatureClocksource2 | KvmFeatureClocksourceStable, 0, 0, 0);
            case 0x8000_0000:
                return (MaxExtendedLeaf, 0, 0, 0);
            case 0x8000_0001:
                return (0, 0, LahfLm, Syscall | Nx | Rdtscp | Lm);
            case 0x8000_0002:
            case 0x8000_0003:
            case 0x8000_0004:
                return BrandChunk((int)(leaf - 0x8000_0002));
            case 0x8000_0007:
                // Invariant TSC (EDX bit 8): the guest TSC follows the host's monotonic clock.
                return (0, 0, 0, 1 << 8);
            case 7 when subleaf == 0:
                // Structured extended features: SMEP and SMAP (EBX), IA32_ARCH_CAPABILITIES (EDX bit 29, SDM Vol. 2A
                // Table 3-8) and IA32_SPEC_CTRL/IA32_PRED_CMD (26, 27). The interpreter does not speculate, so it
                // truthfully reports itself immune to Meltdown/MDS/TAA/BHI/ITS... through that MSR, with enhanced IBRS:
                // Linux then skips kernel page-table isolation (two full TLB flushes per syscall), retpolines and
                // return thunks (CpuMsr.cs).
                return (0, Smep | Smap, 0, ArchCapabilities | SpecCtrl | Stibp);
            case 0x8000_0008:
                // 40 physical (Mmu.PhysicalAddressBits), 48 linear address bits.
                return ((48u << 8) | Mmu.PhysicalAddressBits, 0, 0, 0);
            default:
                return (0, 0, 0, 0);
        }
    }

    private static (uint, uint, uint, uint) BrandChunk(int chunk)
    {
        Span<byte> brand = stackalloc byte[48];
        "Ringvisor bt"u8.CopyTo(brand);
        var s = brand.Slice(chunk * 16, 16);
        return (BitConverter.ToUInt32(s), BitConverter.ToUInt32(s[4..]), BitConverter.ToUInt32(s[8..]), BitConverter.ToUInt32(s[12..]));
    }

    private void ExecCpuid()
    {
        var (a, b, c, d) = Cpuid((uint)Gpr[0], (uint)Gpr[1]);
        Gpr[0] = a;
        Gpr[3] = b;
        Gpr[1] = c;
        Gpr[2] = d;
    }
}
