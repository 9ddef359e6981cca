// System instructions (SDM Vol. 2 / Vol. 3A chapter 2, 5): MOV to/from CRn and DRn with the mode transitions they
// cause (CR0.PE/PG, EFER.LME → LMA), LGDT/LIDT/SGDT/SIDT, LLDT/SLDT/LTR/STR, LMSW/SMSW/CLTS, INVLPG, cache
// control as no-ops, SYSCALL/SYSRET, SYSENTER/SYSEXIT, SWAPGS, RDTSC/RDTSCP, RDPMC, VMCALL/VMMCALL (hypercalls).
using Iced.Intel;
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Exceptions;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    private void ExecSystemOrSimd(in Instruction ins)
    {
        switch (ins.Mnemonic)
        {
            case Mnemonic.Lgdt:
            case Mnemonic.Lidt:
                ExecLoadDescriptorTable(ins, ins.Mnemonic == Mnemonic.Lidt);
                break;
            case Mnemonic.Sgdt:
            case Mnemonic.Sidt:
                ExecStoreDescriptorTable(ins, ins.Mnemonic == Mnemonic.Sidt);
                break;
            case Mnemonic.Lldt: ExecLldt(ins); break;
            case Mnemonic.Ltr: ExecLtr(ins); break;
            case Mnemonic.Sldt: ExecStoreSelector(ins, Ldtr.Selector); break;
            case Mnemonic.Str: ExecStoreSelector(ins, Tr.Selector); break;
            case Mnemonic.Smsw: ExecStoreSelector(ins, (ushort)Cr0); break;
            case Mnemonic.Lmsw: ExecLmsw(ins); break;
            case Mnemonic.Clts:
                if (_cpl != 0)
                {
                    _ = Gp(0);
                    return;
                }

                Cr0 &= ~Cr0Ts;
                break;
            case Mnemonic.Invlpg:
                if (_cpl != 0)
                {
                    _ = Gp(0);
                    return;
                }

                FlushTlbPage(MemoryLinear(ins));
                break;
            case Mnemonic.Wbinvd:
            case Mnemonic.Invd:
                if (_cpl != 0)
                {
                    _ = Gp(0);
                }

                break;
            case Mnemonic.Cpuid: ExecCpuid(); break;
            case Mnemonic.Rdmsr: ExecRdmsr(); break;
            case Mnemonic.Wrmsr: ExecWrmsr(); break;
            case Mnemonic.Rdtsc: ExecRdtsc(false); break;
            case Mnemonic.Rdtscp: ExecRdtsc(true); break;
            case Mnemonic.Rdpmc:
                if (_cpl != 0 && (Cr4 & Cr4Pce) == 0)
                {
                    _ = Gp(0);
                    return;
                }

                // No performance counters are advertised (CPUID leaf 0xA is zero): any counter index is invalid.
                _ = Gp(0);
                break;
            case Mnemonic.Syscall: ExecSyscall(); break;
            case Mnemonic.Sysret:
            case Mnemonic.Sysretq:
                ExecSysret(ins);
                break;
            case Mnemonic.Sysenter: ExecSysenter(); break;
            case Mnemonic.Sysexit:
            case Mnemonic.Sysexitq:
                ExecSysexit(ins);
                break;
            case Mnemonic.Stac:
            case Mnemonic.Clac:
                // SDM Vol. 2B STAC/CLAC: #UD at CPL > 0 (SMAP is advertised, so that is the only #UD case; a LOCK
                // prefix is #UD at decode).
                if (_cpl != 0 || ins.HasLockPrefix)
                {
                    _ = Ud();
                    return;
                }

                _flags = ins.Mnemonic == Mnemonic.Stac ? _flags | FlagAc : _flags & ~FlagAc;
                SyncPrivilege();
                break;
            case Mnemonic.Swapgs:
                if (_bitness != 64)
                {
                    Undefined(ins);
                    return;
                }

                if (_cpl != 0)
                {
                    _ = Gp(0);
                    return;
                }

                (Seg[SegGs].Base, _kernelGsBase) = (_kernelGsBase, Seg[SegGs].Base);
                break;
            case Mnemonic.Vmcall:
            case Mnemonic.Vmmcall:
                ExecHypercall();
                break;
            default:
                ExecSimd(ins);
                break;
        }
    }

    // ---- control and debug registers ----------------------------------------------------------------------------

    private void ExecMovToCr(in Instruction ins)
    {
        if (_cpl != 0)
        {
            _ = Gp(0);
            return;
        }

        ulong v = ReadReg(ins.Op1Register);
        int n = ins.Op0Register - Register.CR0;
        _ = WriteCr(n, v);
    }

    /// <summary>MOV to CRn with the SDM's checks; returns false after raising #GP/#UD.</summary>
    internal bool WriteCr(int n, ulong v)
    {
        switch (n)
        {
            case 0:
                {
                    if ((v >> 32) != 0 && _longMode)
                    {
                        return Gp(0);
                    }

                    v = (uint)v | Cr0Et;
                    if ((v & Cr0Pg) != 0 && (v & Cr0Pe) == 0)
                    {
                        return Gp(0);
                    }

                    if ((v & Cr0Nw) != 0 && (v & Cr0Cd) == 0)
                    {
                        return Gp(0);
                    }

                    bool pgOn = (v & Cr0Pg) != 0 && (Cr0 & Cr0Pg) == 0;
                    bool pgOff = (v & Cr0Pg) == 0 && (Cr0 & Cr0Pg) != 0;
                    ulong efer = Efer;
                    if (pgOn && (Efer & EferLme) != 0)
                    {
                        if ((Cr4 & Cr4Pae) == 0)
                        {
                            return Gp(0);
                        }

                        efer |= EferLma;
                    }

                    if (pgOff && _longMode)
                    {
                        if (_bitness == 64)
                        {
                            return Gp(0);
                        }

                        efer &= ~EferLma;
                    }

                    // The MMU flushes what the change requires (SDM Vol. 3A §4.10.4.1) and, when the result is PAE
                    // paging, loads the PDPTEs: a reserved bit in one is #GP(0) with nothing changed (§4.4.1).
                    if (!_mmu.SetPagingState(PagingWith(v, Cr4, efer)))
                    {
                        return Gp(0);
                    }

                    ulong changed = Cr0 ^ v;
                    Cr0 = v;
                    Efer = efer;
                    if ((changed & Cr0Pe) != 0 && (v & Cr0Pe) == 0)
                    {
                        _cpl = 0;
                    }

                    UpdateMode();
                    return true;
                }

            case 2:
                Cr2 = v;
                return true;
            case 3:
                if (_longMode && (v & 0xFFF0_0000_0000_0000) != 0)
                {
                    return Gp(0);
                }

                {
                    ulong cr3 = _longMode ? v : (uint)v;

                    // Flushes non-global translations; under PAE paging loads the PDPTEs (bad one: #GP(0), CR3 kept).
                    if (!_mmu.WriteCr3(cr3))
                    {
                        return Gp(0);
                    }

                    Cr3 = cr3;
                    return true;
                }
            case 4:
                {
                    if ((v & ~Cr4Supported) != 0 || (_longMode && (v & Cr4Pae) == 0))
                    {
                        return Gp(0);
                    }

                    // The MMU flushes on PGE/PAE/PSE/SMEP/SMAP changes and reloads PAE PDPTEs when required.
                    if (!_mmu.SetPagingState(PagingWith(Cr0, v, Efer)))
                    {
                        return Gp(0);
                    }

                    Cr4 = v;
                    return true;
                }

            case 8:
                if ((v & ~0xFUL) != 0)
                {
                    return Gp(0);
                }

                Cr8 = v;
                if (_apic is not null)
                {
                    // CR8 is the APIC's task-priority class (SDM Vol. 3A §10.8.6.1): TPR[7:4].
                    Span<byte> tpr = [(byte)(v << 4), 0, 0, 0];
                    _apic.Write(0x80, tpr);
                }

                return true;
            default:
                return Ud();
        }
    }

    private void ExecMovFromCr(in Instruction ins)
    {
        if (_cpl != 0)
        {
            _ = Gp(0);
            return;
        }

        int n = ins.Op1Register - Register.CR0;
        ulong v;
        switch (n)
        {
            case 0: v = Cr0; break;
            case 2: v = Cr2; break;
            case 3: v = Cr3; break;
            case 4: v = Cr4; break;
            case 8:
                if (_apic is not null)
                {
                    Span<byte> tpr = stackalloc byte[4];
                    _apic.Read(0x80, tpr);
                    Cr8 = (ulong)(tpr[0] >> 4);
                }

                v = Cr8;
                break;
            default:
                _ = Ud();
                return;
        }

        WriteReg(ins.Op0Register, v);
    }

    private void ExecMovToDr(in Instruction ins)
    {
        if (_cpl != 0)
        {
            _ = Gp(0);
            return;
        }

        int n = ins.Op0Register - Register.DR0;
        if (n is 4 or 5)
        {
            if ((Cr4 & Cr4De) != 0)
            {
                _ = Ud();
                return;
            }

            n += 2;
        }

        if (GeneralDetect())
        {
            return;
        }

        ulong v = ReadReg(ins.Op1Register);
        if (n >= 6 && (v >> 32) != 0)
        {
            _ = Gp(0);
            return;
        }

        // Breakpoints are stored but not armed: hardware debug traps are not emulated.
        Dr[n] = n == 6 ? (v | 0xFFFF_0FF0UL) & 0xFFFF_EFFF : n == 7 ? (v | 0x400) & ~0xD000UL : v;
    }

    /// <summary>
    /// DR7.GD: any MOV DR raises a fault-class #DB with DR6.BD set, and the CPU clears GD so the handler can use the
    /// debug registers (SDM Vol. 3A §17.2.4, §17.3.1.2).
    /// </summary>
    private bool GeneralDetect()
    {
        if ((Dr[7] & Dr7GeneralDetect) == 0)
        {
            return false;
        }

        Dr[6] |= Dr6BreakpointDetect;
        Dr[7] &= ~Dr7GeneralDetect;
        return !Fault(ExceptionVector.Debug);
    }

    private const ulong Dr7GeneralDetect = 1UL << 13, Dr6BreakpointDetect = 1UL << 13;

    private void ExecMovFromDr(in Instruction ins)
    {
        if (_cpl != 0)
        {
            _ = Gp(0);
            return;
        }

        int n = ins.Op1Register - Register.DR0;
        if (n is 4 or 5)
        {
            if ((Cr4 & Cr4De) != 0)
            {
                _ = Ud();
                return;
            }

            n += 2;
        }

        if (GeneralDetect())
        {
            return;
        }

        WriteReg(ins.Op0Register, Dr[n]);
    }

    // ---- descriptor tables ----------------------------------------------------------------------------------------

    private void ExecLoadDescriptorTable(in Instruction ins, bool idt)
    {
        if (_cpl != 0 && _protected)
        {
            _ = Gp(0);
            return;
        }

        ulong la = MemoryLinear(ins);
        int baseSize = _bitness == 64 ? 8 : 4;
        if (!ReadMem(la, 2, out ulong limit) || !ReadMem(AddressWrap(la + 2), baseSize, out ulong b))
        {
            return;
        }

        if (_bitness == 64 && !IsCanonical(b))
        {
            _ = Gp(0);
            return;
        }

        // A 16-bit operand size loads only 24 bits of base (SDM LGDT).
        if (_bitness != 64 && ins.CodeSize != CodeSize.Code64 && IsOperandSize16(ins))
        {
            b &= 0xFF_FFFF;
        }

        var t = new DescriptorTable { Base = b, Limit = (ushort)limit };
        if (idt)
        {
            Idtr = t;
        }
        else
        {
            Gdtr = t;
        }
    }

    private static bool IsOperandSize16(in Instruction ins) =>
        ins.Code is Code.Lgdt_m1632_16 or Code.Lidt_m1632_16 or Code.Sgdt_m1632_16 or Code.Sidt_m1632_16;

    private void ExecStoreDescriptorTable(in Instruction ins, bool idt)
    {
        var t = idt ? Idtr : Gdtr;
        ulong la = MemoryLinear(ins);
        int baseSize = _bitness == 64 ? 8 : 4;
        ulong b = _bitness == 64 ? t.Base : (uint)t.Base;
        if (!WriteMem(la, 2, t.Limit) || !WriteMem(AddressWrap(la + 2), baseSize, b))
        {
            return;
        }
    }

    private void ExecStoreSelector(in Instruction ins, ushort v)
    {
        if (ins.Mnemonic is Mnemonic.Sldt or Mnemonic.Str && !_protected)
        {
            _ = Ud();
            return;
        }

        if (ins.GetOpKind(0) == OpKind.Register)
        {
            WriteReg(ins.Op0Register, v);
        }
        else
        {
            _ = WriteMem(MemoryLinear(ins), 2, v);
        }
    }

    /// <summary>Reads a system descriptor (LDT/TSS): 16 bytes in IA-32e mode (SDM Vol. 3A §7.2.3).</summary>
    private bool ReadSystemDescriptor(ushort sel, out ulong lo, out ulong hi, out ulong addr)
    {
        hi = 0;
        if ((sel & 4) != 0)
        {
            lo = 0;
            addr = 0;
            return Gp((uint)(sel & ~3));
        }

        if (!ReadDescriptor(sel, out lo, out addr))
        {
            return false;
        }

        if (_longMode)
        {
            if ((ulong)(sel & ~7) + 15 > Gdtr.Limit)
            {
                return Gp((uint)(sel & ~3));
            }

            if (!ReadSys(addr + 8, 8, out hi))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The checks LLDT and LTR share before their selector is looked at (SDM Vol. 2A LLDT/LTR): #UD outside
    /// protected mode, #GP(0) above CPL 0, then the 16-bit source operand (which may fault).
    /// </summary>
    private bool TryReadSystemSelectorOperand(in Instruction ins, out ushort sel)
    {
        sel = 0;
        if (!_protected)
        {
            _ = Ud();
            return false;
        }

        if (_cpl != 0)
        {
            _ = Gp(0);
            return false;
        }

        if (!ReadOp(ins, 0, 2, out ulong sv))
        {
            return false;
        }

        sel = (ushort)sv;
        return true;
    }

    private void ExecLldt(in Instruction ins)
    {
        if (!TryReadSystemSelectorOperand(ins, out ushort sel))
        {
            return;
        }
        if ((sel & ~3) == 0)
        {
            Ldtr = new SegmentRegister { Selector = sel, Unusable = true };
            return;
        }

        if (!ReadSystemDescriptor(sel, out ulong lo, out ulong hi, out _))
        {
            return;
        }

        if (IsCodeOrDataDesc(lo) || ((lo >> 40) & 0xF) != 2)
        {
            _ = Gp((uint)(sel & ~3));
            return;
        }

        if (!DescPresent(lo))
        {
            _ = Fault(ExceptionVector.SegmentNotPresent, (uint)(sel & ~3));
            return;
        }

        if (!SystemBaseCanonical(sel, lo, hi))
        {
            return;
        }

        Ldtr = DescriptorToCache(sel, lo, hi);
    }

    /// <summary>
    /// In IA-32e mode an LDT or TSS descriptor's 64-bit base must be canonical, else #GP(selector) (SDM Vol. 2A LLDT,
    /// LTR: "IF !IsCanonical(descriptor base)").
    /// </summary>
    private bool SystemBaseCanonical(ushort sel, ulong lo, ulong hi)
    {
        if (!_longMode)
        {
            return true;
        }

        ulong @base = ((lo >> 16) & 0xFF_FFFF) | ((lo >> 56) << 24) | ((hi & 0xFFFF_FFFF) << 32);
        return IsCanonical(@base) || Gp((uint)(sel & ~3));
    }

    private void ExecLtr(in Instruction ins)
    {
        if (!TryReadSystemSelectorOperand(ins, out ushort sel))
        {
            return;
        }
        if ((sel & ~3) == 0)
        {
            _ = Gp(0);
            return;
        }

        if (!ReadSystemDescriptor(sel, out ulong lo, out ulong hi, out ulong addr))
        {
            return;
        }

        int type = (int)((lo >> 40) & 0xF);
        bool ok = _longMode ? type == 9 : type is 1 or 9;
        if (IsCodeOrDataDesc(lo) || !ok)
        {
            _ = Gp((uint)(sel & ~3));
            return;
        }

        if (!DescPresent(lo))
        {
            _ = Fault(ExceptionVector.SegmentNotPresent, (uint)(sel & ~3));
            return;
        }

        if (!SystemBaseCanonical(sel, lo, hi))
        {
            return;
        }

        // Mark the TSS busy in the GDT (type bit 1).
        if (!WriteSys(addr + 5, 1, ((lo >> 40) & 0xFF) | 2))
        {
            return;
        }

        Tr = DescriptorToCache(sel, lo | (2UL << 40), hi);
    }

    private void ExecLmsw(in Instruction ins)
    {
        if (_cpl != 0 && _protected)
        {
            _ = Gp(0);
            return;
        }

        if (!ReadOp(ins, 0, 2, out ulong v))
        {
            return;
        }

        // LMSW changes PE, MP, EM, TS only and cannot clear PE.
        ulong nv = (Cr0 & ~0xEUL) | (v & 0xE) | ((Cr0 | v) & 1);
        _ = WriteCr(0, nv);
    }

    // ---- fast system calls ----------------------------------------------------------------------------------------

    private void LoadFlatCs(ushort sel, int dpl, bool longCode)
    {
        Seg[SegCs] = new SegmentRegister
        {
            Selector = sel,
            Base = 0,
            Limit = 0xFFFF_FFFF,
            Type = 0xB,
            CodeOrData = true,
            Present = true,
            Dpl = (byte)dpl,
            Long = longCode,
            DefaultBig = !longCode,
            Granularity = true,
        };
        _cpl = dpl;
    }

    private void LoadFlatSs(ushort sel, int dpl)
    {
        Seg[SegSs] = new SegmentRegister
        {
            Selector = sel,
            Base = 0,
            Limit = 0xFFFF_FFFF,
            Type = 0x3,
            CodeOrData = true,
            Present = true,
            Dpl = (byte)dpl,
            DefaultBig = true,
            Granularity = true,
        };
    }

    private void ExecSyscall()
    {
        if ((Efer & EferSce) == 0 || !_protected)
        {
            _ = Ud();
            return;
        }

        ushort sel = (ushort)(_star >> 32);
        ulong f = GetRflags();
        if (_longMode)
        {
            // 64-bit callers go to LSTAR, compatibility-mode callers to CSTAR.
            ulong target = _bitness == 64 ? _lstar : _cstar;
            Gpr[1] = _nextRip;
            Gpr[11] = f & ~FlagRf;
            LoadFlatCs((ushort)(sel & ~3), 0, true);
            LoadFlatSs((ushort)((sel + 8) & ~3), 0);
            SetRflags(f & ~_sfmask & ~FlagRf);
            UpdateMode();
            _nextRip = target;

            // SYSCALL's single-step trap follows TF after the instruction: when FMASK clears TF, no #DB is taken at
            // the kernel entry point (the behaviour kvm-unit-tests' syscall test checks, and QEMU's TCG models).
            _suppressSingleStep = (f & FlagTf) != 0 && (_flags & FlagTf) == 0;
            return;
        }

        // Legacy-mode SYSCALL (AMD): EIP from STAR[31:0].
        Gpr[1] = (uint)_nextRip;
        LoadFlatCs((ushort)(sel & ~3), 0, false);
        LoadFlatSs((ushort)((sel + 8) & ~3), 0);
        SetRflags(f & ~(FlagVm | FlagIf | FlagRf));
        UpdateMode();
        _nextRip = (uint)_star;
    }

    private void ExecSysret(in Instruction ins)
    {
        if ((Efer & EferSce) == 0 || !_protected)
        {
            _ = Ud();
            return;
        }

        if (_cpl != 0)
        {
            _ = Gp(0);
            return;
        }

        bool to64 = ins.Code == Code.Sysretq;
        ushort sel = (ushort)(_star >> 48);
        bool tfBefore = (_flags & FlagTf) != 0;
        if (_longMode)
        {
            if (to64 && !IsCanonical(Gpr[1]))
            {
                _ = Gp(0);
                return;
            }

            SetRflags((Gpr[11] & ~(FlagRf | FlagVm)) | 2);
            if (to64)
            {
                LoadFlatCs((ushort)((sel + 16) | 3), 3, true);
                _nextRip = Gpr[1];
            }
            else
            {
                LoadFlatCs((ushort)(sel | 3), 3, false);
                _nextRip = (uint)Gpr[1];
            }
        }
        else
        {
            LoadFlatCs((ushort)(sel | 3), 3, false);
            _flags |= FlagIf;
            _nextRip = (uint)Gpr[1];
        }

        // SS keeps its null-or-flat cache shape; only the selector and DPL change (SDM SYSRET).
        LoadFlatSs((ushort)((sel + 8) | 3), 3);
        UpdateMode();
        if ((_flags & FlagIf) != 0)
        {
            _attention = true;
        }

        // Like SYSCALL, SYSRET's single-step trap follows TF after it: a TF restored from R11 traps right after the
        // SYSRET, in user mode (kvm-unit-tests' syscall test; QEMU's TCG does the same), and a TF it clears does not.
        if ((_flags & FlagTf) != 0)
        {
            Dr[6] |= 1 << 14;
            _softwareVector = ExceptionVector.Debug;
            _softwareSource = ExceptionSource.PrivilegedSoftware;
        }
        else
        {
            _suppressSingleStep = tfBefore;
        }
    }

    private void ExecSysenter()
    {
        if (!_protected || (_sysenterCs & 0xFFFC) == 0)
        {
            _ = Gp(0);
            return;
        }

        ushort cs = (ushort)(_sysenterCs & 0xFFFC);
        _flags = GetRflags() & ~(FlagVm | FlagIf | FlagRf);
        LoadFlatCs(cs, 0, _longMode);
        LoadFlatSs((ushort)(cs + 8), 0);
        UpdateMode();
        Gpr[4] = _longMode ? _sysenterEsp : (uint)_sysenterEsp;
        _nextRip = _longMode ? _sysenterEip : (uint)_sysenterEip;
    }

    private void ExecSysexit(in Instruction ins)
    {
        if (!_protected || _cpl != 0 || (_sysenterCs & 0xFFFC) == 0)
        {
            _ = Gp(0);
            return;
        }

        bool to64 = ins.Code == Code.Sysexitq;
        ushort baseSel = (ushort)_sysenterCs;
        if (to64)
        {
            if (!IsCanonical(Gpr[2]) || !IsCanonical(Gpr[1]))
            {
                _ = Gp(0);
                return;
            }

            LoadFlatCs((ushort)((baseSel + 32) | 3), 3, true);
            LoadFlatSs((ushort)((baseSel + 40) | 3), 3);
            Gpr[4] = Gpr[1];
            _nextRip = Gpr[2];
        }
        else
        {
            LoadFlatCs((ushort)((baseSel + 16) | 3), 3, false);
            LoadFlatSs((ushort)((baseSel + 24) | 3), 3);
            Gpr[4] = (uint)Gpr[1];
            _nextRip = (uint)Gpr[2];
        }

        UpdateMode();
    }

    // ---- time stamp counter ---------------------------------------------------------------------------------------

    /// <summary>Guest TSC: host monotonic time scaled to the advertised TSC frequency, plus the guest's offset.</summary>
    internal ulong ReadTsc() => TscAt(_host.Time.NowNanoseconds);

    /// <summary>The guest TSC at host clock reading <paramref name="ns"/>.</summary>
    private ulong TscAt(long ns)
    {
        var t = _host.Time;
        ulong ticks = t.TscFrequency == 1_000_000_000 ? (ulong)ns : (ulong)((Int128)ns * t.TscFrequency / 1_000_000_000);
        return ticks + _tscOffset;
    }

    private void ExecRdtsc(bool withAux)
    {
        if ((Cr4 & Cr4Tsd) != 0 && _cpl != 0 && _protected)
        {
            _ = Gp(0);
            return;
        }

        ulong tsc = ReadTsc();
        Gpr[0] = (uint)tsc;
        Gpr[2] = tsc >> 32;
        if (withAux)
        {
            Gpr[1] = (uint)_tscAux;
        }
    }
}
