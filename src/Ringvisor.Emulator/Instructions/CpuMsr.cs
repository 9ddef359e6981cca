// Model-specific registers (SDM Vol. 4) that Linux uses, the APIC's MSRs forwarded to the local APIC, and the KVM
// paravirtual clock MSRs (Documentation/virt/kvm/x86/msr.rst): MSR_KVM_WALL_CLOCK_NEW and MSR_KVM_SYSTEM_TIME_NEW
// with pvclock structures computed from the engine's time source. Unknown MSRs raise #GP(0).

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    internal const uint MsrTsc = 0x10;
    internal const uint MsrApicBase = 0x1B;
    internal const uint MsrFeatureControl = 0x3A;
    internal const uint MsrBiosSignId = 0x8B;
    internal const uint MsrMtrrCap = 0xFE;
    internal const uint MsrArchCapabilities = 0x10A;
    internal const uint MsrSpecCtrl = 0x48, MsrPredCmd = 0x49;

    // IA32_ARCH_CAPABILITIES (SDM Vol. 4 Table 2-2; Intel's "IA32_ARCH_CAPABILITIES enumeration" for the later bits):
    // RDCL_NO (bit 0), IBRS_ALL (1: enhanced IBRS), SKIP_L1DFL_VMENTRY (3), SSB_NO (4), MDS_NO (5), PSCHANGE_MC_NO (6),
    // TAA_NO (8), SBDR_SSDP_NO (13), FBSDP_NO (14), PSDP_NO (15), BHI_NO (20), PBRSB_NO (24), GDS_NO (26), RFDS_NO
    // (27), ITS_NO (62). Neither engine of the bt CPU predicts or speculates, so it has none of these side channels to
    // report, and with enhanced IBRS (IBRS is a stored bit of IA32_SPEC_CTRL that nothing needs to act on) Linux keeps
    // direct returns and indirect calls instead of patching in return thunks and retpolines (each a detour through a
    // thunk: two unit exits per function return in translated kernel code).
    private const ulong ArchCapabilitiesValue = (1UL << 0) | (1UL << 1) | (1UL << 3) | (1UL << 4) | (1UL << 5) |
        (1UL << 6) | (1UL << 8) | (1UL << 13) | (1UL << 14) | (1UL << 15) | (1UL << 20) | (1UL << 24) | (1UL << 26) |
        (1UL << 27) | (1UL << 62);

    // IA32_SPEC_CTRL bits this CPU accepts: IBRS (0), STIBP (1), SSBD (2). Others are reserved (#GP).
    private const ulong SpecCtrlWritable = 0b111;
    internal const uint MsrSysenterCs = 0x174, MsrSysenterEsp = 0x175, MsrSysenterEip = 0x176;
    internal const uint MsrMcgCap = 0x179, MsrMcgStatus = 0x17A;
    internal const uint MsrMiscEnable = 0x1A0;
    internal const uint MsrDebugCtl = 0x1D9;
    internal const uint MsrPat = 0x277;
    internal const uint MsrMtrrDefType = 0x2FF;
    internal const uint MsrTscDeadline = 0x6E0;
    internal const uint MsrEfer = 0xC000_0080, MsrStar = 0xC000_0081, MsrLstar = 0xC000_0082, MsrCstar = 0xC000_0083;
    internal const uint MsrSfmask = 0xC000_0084, MsrFsBase = 0xC000_0100, MsrGsBase = 0xC000_0101;
    internal const uint MsrKernelGsBase = 0xC000_0102, MsrTscAux = 0xC000_0103;
    internal const uint MsrKvmWallClock = 0x11, MsrKvmSystemTime = 0x12;
    internal const uint MsrKvmWallClockNew = 0x4b56_4d00, MsrKvmSystemTimeNew = 0x4b56_4d01;

    // pvclock_vcpu_time_info.flags bit 0 (arch/x86/include/asm/pvclock-abi.h).
    private const byte PvclockTscStableBit = 1;

    private ulong _star, _lstar, _cstar, _sfmask, _kernelGsBase, _tscAux, _pat, _tscOffset;
    private ulong _sysenterCs, _sysenterEsp, _sysenterEip;
    private ulong _miscEnable, _mtrrDefType, _debugCtl, _apicBaseFallback, _specCtrl;
    private readonly Dictionary<uint, ulong> _mtrrs = [];

    private void InitMsrs()
    {
        // Power-on values (SDM Vol. 3A Table 9-1 and §11.12.4): PAT = WB WT UC- UC repeated; fast strings on.
        _pat = 0x0007_0406_0007_0406;
        _miscEnable = 1;
        _apicBaseFallback = 0xFEE0_0000 | (_index == 0 ? 0x900UL : 0x800UL);
    }

    private ulong ReadApicBase()
    {
        if (_apic is not null && _apic.TryReadMsr(MsrApicBase, out ulong v))
        {
            return v;
        }

        return _apicBaseFallback;
    }

    private void ExecRdmsr()
    {
        if (_cpl != 0)
        {
            _ = Gp(0);
            return;
        }

        if (!ReadMsr((uint)Gpr[1], out ulong v))
        {
            _ = Gp(0);
            return;
        }

        Gpr[0] = (uint)v;
        Gpr[2] = v >> 32;
    }

    private void ExecWrmsr()
    {
        if (_cpl != 0)
        {
            _ = Gp(0);
            return;
        }

        ulong v = ((Gpr[2] & 0xFFFF_FFFF) << 32) | (Gpr[0] & 0xFFFF_FFFF);
        if (!WriteMsr((uint)Gpr[1], v))
        {
            _ = Gp(0);
        }
    }

    internal bool ReadMsr(uint msr, out ulong v)
    {
        v = 0;
        switch (msr)
        {
            case MsrTsc: v = ReadTsc(); return true;
            case MsrApicBase: v = ReadApicBase(); return true;
            case MsrFeatureControl: v = 1; return true; // locked, VMX disabled
            case MsrBiosSignId: return true;
            case MsrMtrrCap: v = 0; return true;
            case MsrArchCapabilities: v = ArchCapabilitiesValue; return true;
            case MsrSpecCtrl: v = _specCtrl; return true;
            case MsrSysenterCs: v = _sysenterCs; return true;
            case MsrSysenterEsp: v = _sysenterEsp; return true;
            case MsrSysenterEip: v = _sysenterEip; return true;
            case MsrMcgCap:
            case MsrMcgStatus:
                return true;
            case MsrMiscEnable: v = _miscEnable; return true;
            case MsrDebugCtl: v = _debugCtl; return true;
            case MsrPat: v = _pat; return true;
            case MsrMtrrDefType: v = _mtrrDefType; return true;
            case MsrEfer: v = Efer; return true;
            case MsrStar: v = _star; return true;
            case MsrLstar: v = _lstar; return true;
            case MsrCstar: v = _cstar; return true;
            case MsrSfmask: v = _sfmask; return true;
            case MsrFsBase: v = Seg[SegFs].Base; return true;
            case MsrGsBase: v = Seg[SegGs].Base; return true;
            case MsrKernelGsBase: v = _kernelGsBase; return true;
            case MsrTscAux: v = _tscAux; return true;
            case MsrKvmWallClock:
            case MsrKvmWallClockNew:
                v = _kvmWallClock;
                return true;
            case MsrKvmSystemTime:
            case MsrKvmSystemTimeNew:
                v = _kvmSystemTime;
                return true;
        }

        if (msr is >= 0x200 and <= 0x20F or 0x250 or 0x258 or 0x259 or >= 0x268 and <= 0x26F)
        {
            _ = _mtrrs.TryGetValue(msr, out v);
            return true;
        }

        return _apic is not null && _apic.TryReadMsr(msr, out v);
    }

    internal bool WriteMsr(uint msr, ulong v)
    {
        switch (msr)
        {
            case MsrTsc:
                _tscOffset = v - (ReadTsc() - _tscOffset);

                // The guest TSC jumped: republish kvm-clock against the new TSC, as KVM does on a TSC write.
                WriteSystemTime();
                return true;
            case MsrApicBase:
                if (_apic is not null)
                {
                    if (!_apic.TryWriteMsr(msr, v))
                    {
                        return false;
                    }

                    // The xAPIC page may have moved: RAM pages cached in the TLB could now be the APIC's (and back).
                    _mmu.FlushAll();
                    return true;
                }

                _apicBaseFallback = v;
                return true;
            case MsrBiosSignId:
            case MsrMcgStatus:
                return true;
            case MsrSysenterCs: _sysenterCs = v; return true;
            case MsrSysenterEsp: _sysenterEsp = v; return true;
            case MsrSysenterEip: _sysenterEip = v; return true;
            case MsrMiscEnable: _miscEnable = v; return true;
            case MsrSpecCtrl:
                if ((v & ~SpecCtrlWritable) != 0)
                {
                    return false;
                }

                _specCtrl = v;
                return true;
            case MsrPredCmd:
                // IBPB (bit 0): there are no predictions to flush. Write-only; other bits reserved.
                return (v & ~1UL) == 0;
            case MsrDebugCtl: _debugCtl = v; return true;
            case MsrPat:
                // Each PAT entry must be a valid memory type (0, 1, 4, 5, 6, 7) (SDM Vol. 3A §11.12.2).
                for (int i = 0; i < 8; i++)
                {
                    ulong t = (v >> (i * 8)) & 0xFF;
                    if (t is 2 or 3 or > 7)
                    {
                        return false;
                    }
                }

                _pat = v;
                return true;
            case MsrMtrrDefType: _mtrrDefType = v; return true;
            case MsrEfer: return WriteEfer(v);
            case MsrStar: _star = v; return true;
            case MsrLstar:
            case MsrCstar:
                if (!IsCanonical(v))
                {
                    return false;
                }

                if (msr == MsrLstar)
                {
                    _lstar = v;
                }
                else
                {
                    _cstar = v;
                }

                return true;
            case MsrSfmask: _sfmask = (uint)v; return true;
            case MsrFsBase:
            case MsrGsBase:
            case MsrKernelGsBase:
                if (!IsCanonical(v))
                {
                    return false;
                }

                if (msr == MsrFsBase)
                {
                    Seg[SegFs].Base = v;
                }
                else if (msr == MsrGsBase)
                {
                    Seg[SegGs].Base = v;
                }
                else
                {
                    _kernelGsBase = v;
                }

                return true;
            case MsrTscAux: _tscAux = (uint)v; return true;
            case MsrKvmWallClock:
            case MsrKvmWallClockNew:
                _kvmWallClock = v;
                WriteWallClock(v);
                return true;
            case MsrKvmSystemTime:
            case MsrKvmSystemTimeNew:
                _kvmSystemTime = v;
                WriteSystemTime();
                return true;
        }

        if (msr is >= 0x200 and <= 0x20F or 0x250 or 0x258 or 0x259 or >= 0x268 and <= 0x26F)
        {
            _mtrrs[msr] = v;
            return true;
        }

        return _apic is not null && _apic.TryWriteMsr(msr, v);
    }

    private bool WriteEfer(ulong v)
    {
        const ulong allowed = EferSce | EferLme | EferNxe | EferLma;
        if ((v & ~allowed) != 0)
        {
            return false;
        }

        // LME cannot change while paging is enabled (SDM Vol. 3A §9.8.5); LMA is read-only.
        if ((Cr0 & Cr0Pg) != 0 && ((v ^ Efer) & EferLme) != 0)
        {
            return false;
        }

        ulong efer = (v & ~EferLma) | (Efer & EferLma);

        // The MMU flushes when NXE changed; it cannot fail here (the paging mode does not change).
        if (!_mmu.SetPagingState(PagingWith(Cr0, Cr4, efer)))
        {
            return false;
        }

        Efer = efer;
        UpdateMode();
        return true;
    }

    // ---- kvm-clock -----------------------------------------------------------------------------------------------

    private ulong _kvmWallClock;
    private ulong _kvmSystemTime;
    private uint _pvclockVersion;

    /// <summary>struct pvclock_wall_clock { u32 version; u32 sec; u32 nsec; }: the host's wall time at guest time 0.</summary>
    private void WriteWallClock(ulong gpa)
    {
        long bootNs = (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000L) - _host.Time.NowNanoseconds;
        Span<byte> s = stackalloc byte[12];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(s, 2);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(s[4..], (uint)(bootNs / 1_000_000_000));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(s[8..], (uint)(bootNs % 1_000_000_000));
        _ = _host.Memory.Write(gpa, s);
        _host.MemorySystem.InvalidateRange(gpa, 12);
    }

    /// <summary>
    /// struct pvclock_vcpu_time_info (32 bytes): version, pad, tsc_timestamp, system_time, tsc_to_system_mul,
    /// tsc_shift, flags. Guest time = system_time + ((tsc - tsc_timestamp) scaled by mul/shift); since the guest TSC
    /// is derived from the same clock as system time, one update stays exact forever.
    /// </summary>
    private void WriteSystemTime()
    {
        if ((_kvmSystemTime & 1) == 0)
        {
            return;
        }

        ulong gpa = _kvmSystemTime & ~1UL;
        // One clock reading for both fields: reading the clock twice lets a host preemption between the reads skew
        // this vCPU's kvm-clock against the others' (kvm-unit-tests' kvmclock_test saw 20 µs cross-vCPU warps).
        long ns = _host.Time.NowNanoseconds;
        ulong tsc = TscAt(ns);
        // Scale = 1e9 / freq as a 32.32 fixed-point multiplier after a power-of-two pre-shift (KVM's kvm_get_time_scale).
        ComputeTimeScale(_host.Time.TscFrequency, out uint mul, out sbyte shift);
        _pvclockVersion += 2;
        Span<byte> s = stackalloc byte[32];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(s, _pvclockVersion);
        // tsc_timestamp is in guest TSC units: the guest subtracts it from its own RDTSC (pvclock-abi.h).
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(s[8..], tsc);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(s[16..], (ulong)ns);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(s[24..], mul);
        s[28] = (byte)shift;
        s[29] = PvclockTscStableBit;
        _ = _host.Memory.Write(gpa, s);
        _host.MemorySystem.InvalidateRange(gpa, 32);
    }

    /// <summary>Finds shift and mul with ns = ((tsc &lt;&lt; shift) * mul) &gt;&gt; 32 (negative shift = right shift).</summary>
    internal static void ComputeTimeScale(long tscHz, out uint mul, out sbyte shift)
    {
        ulong scaled = 1_000_000_000UL;
        ulong tps = (ulong)tscHz;
        int sh = 0;
        while (tps > scaled * 2 || (tps >> 32) != 0)
        {
            tps >>= 1;
            sh--;
        }

        uint tps32 = (uint)tps;
        while (tps32 <= scaled || (scaled >> 32) != 0)
        {
            if ((scaled >> 32) != 0 || (tps32 & 0x8000_0000) != 0)
            {
                scaled >>= 1;
            }
            else
            {
                tps32 <<= 1;
            }

            sh++;
        }

        mul = (uint)((scaled << 32) / tps32);
        shift = (sbyte)sh;
    }
}
