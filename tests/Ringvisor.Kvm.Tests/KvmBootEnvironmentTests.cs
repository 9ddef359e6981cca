// What a Linux kernel entered through the 64-bit boot protocol observes of the kvm engine's "firmware" state, checked
// from inside tiny long-mode guests: CPUID (per-vCPU APIC ID, hypervisor bit, the KVM signature and paravirtual
// feature leaves, XSAVE leaf), the local APIC's LINT0/LINT1 and ID read through the xAPIC MMIO page at CPL 3, the
// x87/SSE control state, XCR0, and the MSRs a BIOS programs (read with RDMSR in a few CPL-0 instructions).
// CPUID runs at CPL 0: on the dev host (KVM without VT-x/AMD-V) CPUID at CPL 3 executes natively and returns the
// host's values, whereas VT-x and AMD-V always intercept it.
using Iced.Intel;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Vm;
using Ringvisor.Kvm.Native;
using Ringvisor.Kvm.Tests.Support;
using Ringvisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Kvm.Tests;

public class KvmBootEnvironmentTests
{
    private const ulong CodeAddress = 0x1_0000;
    private const ulong UserCodeAddress = 0x1_1000;
    private const ulong UserStackTop = 0x7_0000;
    private const ulong Results = 0x8_0000;
    private const ulong RflagsIopl3 = 3UL << 12; // Intel SDM Vol. 1 §3.4.3.3
    private const ulong LapicBase = 0xFEE0_0000;
    private const int LapicId = 0x20;            // Intel SDM Vol. 3A Table 10-1
    private const ulong Cr4Osxsave = 1UL << 18;  // Intel SDM Vol. 3A §2.5

    /// <summary>CPUID leaves the CPL-3 guest reads, 16 bytes of results each from <see cref="Results"/>.</summary>
    private static readonly (uint Leaf, uint Subleaf)[] s_leaves = [(1, 0), (0x4000_0000, 0), (0x4000_0001, 0), (0xD, 0)];

    private const int LapicResults = 0x100;
    private const int FpuResults = 0x110;

    /// <summary>
    /// CPL-0 stub: CPUID for every leaf of <see cref="s_leaves"/> (16 bytes of results each from
    /// <see cref="Results"/>), then iretq to <see cref="UserCodeAddress"/> at CPL 3 with IOPL 3 and IF = 0.
    /// </summary>
    private static byte[] CpuidThenEnterUserMode() => GuestAsm.Assemble(64, CodeAddress, a =>
    {
        a.mov(edi, (uint)Results);
        foreach (var (leaf, subleaf) in s_leaves)
        {
            a.mov(eax, leaf);
            a.mov(ecx, subleaf);
            a.cpuid();
            a.mov(__dword_ptr[rdi], eax);
            a.mov(__dword_ptr[rdi + 4], ebx);
            a.mov(__dword_ptr[rdi + 8], ecx);
            a.mov(__dword_ptr[rdi + 12], edx);
            a.add(rdi, 16);
        }

        a.push(LongModeGuest.UserData | 3);
        a.push((int)UserStackTop);
        a.push((int)(RflagsIopl3 | CpuRegisters.RflagsReserved));
        a.push(LongModeGuest.UserCode | 3);
        a.push((int)UserCodeAddress);
        a.iretq();
    });

    /// <summary>
    /// CPL-3 guest: LVT LINT0/LINT1 and the APIC ID through the xAPIC page (identity-mapped user-accessible by
    /// LongModeGuest), FNSTCW and STMXCSR, optionally XGETBV; then debug-exit.
    /// </summary>
    private static byte[] ProbeAtCpl3(bool xgetbv) => GuestAsm.Assemble(64, UserCodeAddress, a =>
    {
        a.mov(rbx, LapicBase);
        a.mov(eax, __dword_ptr[rbx + KvmVcpu.LapicLvtLint0]);
        a.mov(__dword_ptr[Results + LapicResults], eax);
        a.mov(eax, __dword_ptr[rbx + KvmVcpu.LapicLvtLint1]);
        a.mov(__dword_ptr[Results + LapicResults + 4], eax);
        a.mov(eax, __dword_ptr[rbx + LapicId]);
        a.mov(__dword_ptr[Results + LapicResults + 8], eax);
        a.fnstcw(__word_ptr[Results + FpuResults]);
        a.stmxcsr(__dword_ptr[Results + FpuResults + 4]);
        if (xgetbv)
        {
            a.xor(ecx, ecx);
            a.xgetbv();
            a.mov(__dword_ptr[Results + FpuResults + 8], eax);
            a.mov(__dword_ptr[Results + FpuResults + 12], edx);
        }

        a.mov(al, 0x42);
        a.@out((byte)DebugExitDevice.Port, al);
        var spin = a.CreateLabel();
        a.Label(ref spin);
        a.jmp(spin);
    });

    private static uint U32(TestVm vm, ulong gpa)
    {
        Assert.True(vm.Memory.TryRead(gpa, out uint v), $"read at {gpa:X}");
        return v;
    }

    private static (uint Eax, uint Ebx, uint Ecx, uint Edx) Observed(TestVm vm, int leafIndex)
    {
        ulong at = Results + ((ulong)leafIndex * 16);
        return (U32(vm, at), U32(vm, at + 4), U32(vm, at + 8), U32(vm, at + 12));
    }

    private static KvmCpuidEntry2 Entry(ReadOnlySpan<KvmCpuidEntry2> table, uint leaf, uint subleaf = 0)
    {
        foreach (var e in table)
        {
            if (e.Function == leaf && ((e.Flags & KvmCpuidEntry2.FlagSignificantIndex) == 0 || e.Index == subleaf))
            {
                return e;
            }
        }

        Assert.Fail($"CPUID leaf {leaf:X}.{subleaf} is not in the table");
        return default;
    }

    /// <summary>Runs the CPUID stub and the CPL-3 probe on vCPU <paramref name="index"/> of a 2-vCPU VM.</summary>
    private static KvmVcpu RunProbe(TestVm vm, int index, bool osxsave, bool xgetbv = false)
    {
        LongModeGuest.Build(vm.Memory);
        vm.Load(CodeAddress, CpuidThenEnterUserMode());
        vm.Load(UserCodeAddress, ProbeAtCpl3(xgetbv));
        var bsp = vm.CreateVcpu(0);
        var ap = vm.CreateVcpu(1);
        var vcpu = index == 0 ? bsp : ap;
        if (index != 0)
        {
            // Started directly rather than by INIT/SIPI, which would need the BSP to run CPL-0 code first.
            vcpu.MpState = KvmMpStateValue.Runnable;
        }

        var state = LongModeGuest.Cpl0State(CodeAddress);
        if (osxsave)
        {
            state.System.Cr4 |= Cr4Osxsave;
        }

        vcpu.SetState(state);
        new VcpuDriver(vcpu, vm.Control).Finish();
        Assert.Equal(VmStopReason.DebugExit, vm.Control.Reason);
        return vcpu;
    }

    [KvmFact]
    public void Cpuid_OnBsp_MatchesTableWithApicIdHypervisorBitAndKvmLeaves()
    {
        using var vm = new TestVm(vcpuCount: 2);
        var vcpu = RunProbe(vm, 0, osxsave: false);
        var supported = vm.Engine.Vm.System.GetSupportedCpuid();

        var leaf1 = Observed(vm, 0);
        var table1 = Entry(vcpu.Cpuid, 1);
        Assert.Equal(0u, leaf1.Ebx >> 24);
        Assert.NotEqual(0u, leaf1.Ecx & (1u << 31));
        // Every feature the table gives is seen (OSXSAVE, ECX bit 27, follows CR4 at run time). Real KVM returns
        // exactly the table; the dev host's CPL-0 emulator adds host feature bits on top, hence a subset check.
        const uint osxsaveBit = 1u << 27;
        Assert.Equal(table1.Ecx & ~osxsaveBit, leaf1.Ecx & table1.Ecx & ~osxsaveBit);
        Assert.Equal(table1.Edx, leaf1.Edx & table1.Edx);

        var signature = Observed(vm, 1);
        Assert.Equal((KvmCpuid.FeaturesLeaf, KvmCpuid.SignatureEbx, KvmCpuid.SignatureEcx, KvmCpuid.SignatureEdx), signature);

        // The paravirtual features are exactly those KVM_GET_SUPPORTED_CPUID offers for leaf 0x40000001.
        var features = Observed(vm, 2);
        Assert.Equal(Entry(supported, KvmCpuid.FeaturesLeaf).Eax, features.Eax);

        // XSAVE leaf, subleaf 0: the XCR0 bits KVM supports.
        var xsave = Observed(vm, 3);
        ulong supportedXcr0 = KvmCpuid.SupportedXcr0(supported);
        Assert.Equal((uint)supportedXcr0, xsave.Eax);
        Assert.Equal((uint)(supportedXcr0 >> 32), xsave.Edx);
    }

    [KvmFact]
    public void Cpuid_OnAp_CarriesApicIdOneInLeaf1AndLapic()
    {
        using var vm = new TestVm(vcpuCount: 2);
        _ = RunProbe(vm, 1, osxsave: false);

        Assert.Equal(1u, Observed(vm, 0).Ebx >> 24);
        Assert.Equal(1u << 24, U32(vm, Results + LapicResults + 8)); // xAPIC ID register bits 31:24
    }

    [KvmFact]
    public void Lapic_BspLint0AndLint1_AreExtIntAndNmiThroughMmio()
    {
        using var vm = new TestVm(vcpuCount: 2);
        var bsp = RunProbe(vm, 0, osxsave: false);

        Assert.Equal(KvmVcpu.LvtDeliveryExtInt, U32(vm, Results + LapicResults));
        Assert.Equal(KvmVcpu.LvtDeliveryNmi, U32(vm, Results + LapicResults + 4));
        Assert.Equal(0u, U32(vm, Results + LapicResults + 8)); // APIC ID 0
        Assert.Equal(KvmVcpu.LvtDeliveryExtInt, bsp.ReadLapicRegister(KvmVcpu.LapicLvtLint0));
    }

    [KvmFact]
    public void Lapic_ApLints_StayMaskedAsAfterReset()
    {
        using var vm = new TestVm(vcpuCount: 2);
        _ = vm.CreateVcpu(0);
        var ap = vm.CreateVcpu(1);

        Assert.NotEqual(0u, ap.ReadLapicRegister(KvmVcpu.LapicLvtLint0) & KvmVcpu.LvtMasked);
        Assert.NotEqual(0u, ap.ReadLapicRegister(KvmVcpu.LapicLvtLint1) & KvmVcpu.LvtMasked);
    }

    [KvmFact]
    public void Fpu_AfterSetState_ControlWordAndMxcsrAreResetValues()
    {
        using var vm = new TestVm(vcpuCount: 2);
        _ = RunProbe(vm, 0, osxsave: false);

        Assert.Equal(0x037Fu, U32(vm, Results + FpuResults) & 0xFFFF); // FNINIT value, Intel SDM Vol. 1 §8.1.5
        Assert.Equal(0x1F80u, U32(vm, Results + FpuResults + 4));      // MXCSR power-up, Intel SDM Vol. 1 §10.2.3
    }

    [KvmFact]
    public void Xcr0_StateWithoutOsxsave_IsX87OnlyAsAfterReset()
    {
        using var vm = new TestVm();
        var vcpu = vm.CreateVcpu(0);
        vcpu.Xcr0 = (KvmCpuid.SupportedXcr0(vcpu.Cpuid) & KvmVcpu.Xcr0X87SseAvx) | 1; // something else first

        vcpu.SetState(LongModeGuest.Cpl0State(CodeAddress));

        Assert.Equal(KvmVcpu.Xcr0Reset, vcpu.Xcr0);
    }

    [KvmFact]
    public void Xcr0_StateWithOsxsave_IsX87SseAvxAsSupportedAndXgetbvSeesIt()
    {
        using var vm = new TestVm(vcpuCount: 2);
        var cpuid = vm.Engine.Vm.System.GetSupportedCpuid();
        ulong expected = (KvmCpuid.SupportedXcr0(cpuid) & KvmVcpu.Xcr0X87SseAvx) | 1;
        // XGETBV needs CPUID.XSAVE; this dev host's KVM leaves it out of leaf 1 (and then only KVM_GET_XCRS can tell).
        bool xgetbv = KvmCpuid.HasXsave(cpuid);

        var vcpu = RunProbe(vm, 0, osxsave: true, xgetbv);

        Assert.Equal(expected, vcpu.Xcr0);
        if (xgetbv)
        {
            ulong seen = U32(vm, Results + FpuResults + 8) | ((ulong)U32(vm, Results + FpuResults + 12) << 32);
            Assert.Equal(expected, seen);
            // Leaf 0xD subleaf 0 EBX is the save-area size for the XCR0 in force: legacy area + header (576 bytes),
            // plus 256 bytes of AVX state at offset 576 (Intel SDM Vol. 1 §13.4, Table 13-1; CPUID 0DH subleaf 2).
            Assert.Equal((expected & 4) != 0 ? 832u : 576u, Observed(vm, 3).Ebx);
        }
    }

    [KvmFact]
    public void Msrs_ReadWithRdmsrAtCpl0_AreWhatABiosLeaves()
    {
        uint[] msrs = [KvmVcpu.MsrMtrrDefType, KvmVcpu.MsrMtrrPhysBase0, KvmVcpu.MsrMtrrPhysMask0, KvmVcpu.MsrPat, KvmVcpu.MsrMiscEnable];
        using var vm = new TestVm();
        LongModeGuest.Build(vm.Memory);
        vm.Load(CodeAddress, GuestAsm.Assemble(64, CodeAddress, a =>
        {
            a.mov(edi, (uint)Results);
            foreach (uint msr in msrs)
            {
                a.mov(ecx, msr);
                a.rdmsr();
                a.mov(__dword_ptr[rdi], eax);
                a.mov(__dword_ptr[rdi + 4], edx);
                a.add(rdi, 8);
            }

            a.@out((byte)DebugExitDevice.Port, al);
        }));
        var vcpu = vm.CreateVcpu(0);
        vcpu.SetState(LongModeGuest.Cpl0State(CodeAddress));

        new VcpuDriver(vcpu, vm.Control).Finish();

        Assert.Equal(VmStopReason.DebugExit, vm.Control.Reason);
        ulong Msr(int i) => U32(vm, Results + ((ulong)i * 8)) | ((ulong)U32(vm, Results + ((ulong)i * 8) + 4) << 32);
        if (KvmCpuid.HasMtrr(vcpu.Cpuid))
        {
            Assert.Equal((1UL << 11) | 6, Msr(0));                 // E, fixed ranges off, default write-back
            Assert.Equal(0xC000_0000UL, Msr(1));                    // PCI hole base, type UC (0)
            ulong mask = Msr(2);
            Assert.Equal(0xC000_0800UL, mask & 0xFFFF_FFFF);        // 1 GiB, valid
            int bits = KvmCpuid.PhysicalAddressBits(vcpu.Cpuid);
            Assert.Equal((1UL << bits) - 1 - 0x3FFF_FFFF, mask & ~0x800UL);
        }

        Assert.Equal(0x0007_0406_0007_0406UL, Msr(3));              // PAT power-up value
        Assert.NotEqual(0UL, Msr(4) & 1);                           // fast strings
    }

    [KvmFact]
    public void Msrs_EveryVcpu_HasTheSameMtrrs()
    {
        using var vm = new TestVm(vcpuCount: 3);
        var states = Enumerable.Range(0, 3).Select(i => vm.CreateVcpu(i).GetState()).ToArray();

        foreach (uint msr in new[] { KvmVcpu.MsrMtrrDefType, KvmVcpu.MsrMtrrPhysBase0, KvmVcpu.MsrMtrrPhysMask0 })
        {
            Assert.All(states, s => Assert.Equal(states[0].Msrs[msr], s.Msrs[msr]));
        }
    }
}
