// The interpreter's architectural state (Intel SDM Vol. 1 §3.4, Vol. 3A §2.5) and its loading from / saving to Core's
// engine-neutral CpuState. The instruction families live in the other partial files of this folder, side by side.
using Iced.Intel;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Interrupts;
using Ringvisor.Emulator.Decoding;
using Ringvisor.Emulator.Memory;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu : IDisposable
{
    // Segment register indices: the x86 encoding order, identical to Iced's ES..GS order.
    internal const int SegEs = 0, SegCs = 1, SegSs = 2, SegDs = 3, SegFs = 4, SegGs = 5;

    internal const ulong FlagCf = 1 << 0, FlagPf = 1 << 2, FlagAf = 1 << 4, FlagZf = 1 << 6, FlagSf = 1 << 7;
    internal const ulong FlagTf = 1 << 8, FlagIf = 1 << 9, FlagDf = 1 << 10, FlagOf = 1 << 11;
    internal const ulong FlagIopl = 3 << 12, FlagNt = 1 << 14, FlagRf = 1 << 16, FlagVm = 1 << 17, FlagAc = 1 << 18;
    internal const ulong FlagVif = 1 << 19, FlagVip = 1 << 20, FlagId = 1 << 21;
    internal const ulong ArithFlags = FlagCf | FlagPf | FlagAf | FlagZf | FlagSf | FlagOf;

    // CR0/CR4 bits (SDM Vol. 3A §2.5).
    internal const ulong Cr0Pe = 1, Cr0Mp = 2, Cr0Em = 4, Cr0Ts = 8, Cr0Et = 16, Cr0Ne = 32, Cr0Wp = 1 << 16, Cr0Am = 1 << 18;
    internal const ulong Cr0Nw = 1UL << 29, Cr0Cd = 1UL << 30, Cr0Pg = 1UL << 31;
    internal const ulong Cr4Vme = 1, Cr4Pvi = 2, Cr4Tsd = 4, Cr4De = 8, Cr4Pse = 16, Cr4Pae = 32, Cr4Mce = 64, Cr4Pge = 128;
    internal const ulong Cr4Pce = 256, Cr4Osfxsr = 512, Cr4Osxmmexcpt = 1024, Cr4Umip = 2048, Cr4FsGsBase = 1 << 16;
    internal const ulong Cr4Smep = 1 << 20, Cr4Smap = 1 << 21;
    internal const ulong EferSce = 1, EferLme = 1 << 8, EferLma = 1 << 10, EferNxe = 1 << 11;

    // Supported CR4 bits: what CPUID advertises (VME/PVI are not implemented, so not allowed; neither are PCIDE, PKE
    // and LA57, which the MMU does not model).
    private const ulong Cr4Supported = Cr4Tsd | Cr4De | Cr4Pse | Cr4Pae | Cr4Mce | Cr4Pge | Cr4Pce | Cr4Osfxsr | Cr4Osxmmexcpt | Cr4FsGsBase
                                     | Cr4Smep | Cr4Smap;

    // The 16 general registers inline in the Cpu object (not an array): translated code reads and writes them at fixed
    // offsets from the Cpu reference, with no array reference to keep in a register and no bounds check.
    internal GprFile Gpr;
    internal ulong Rip;
    internal readonly SegmentRegister[] Seg = new SegmentRegister[6];
    internal SegmentRegister Tr;
    internal SegmentRegister Ldtr;
    internal DescriptorTable Gdtr;
    internal DescriptorTable Idtr;
    internal ulong Cr0 = 0x6000_0010;
    internal ulong Cr2;
    internal ulong Cr3;
    internal ulong Cr4;
    internal ulong Cr8;
    internal ulong Efer;
    internal readonly ulong[] Dr = new ulong[8];

    private readonly CpuHost _host;
    private readonly BtStats _stats;
    private readonly ILocalInterruptController? _apic;
    private readonly int _index;

    // Current mode, recomputed by UpdateMode() whenever CS, CR0 or EFER change.
    private int _bitness = 16;
    private int _cpl;
    private bool _longMode;
    private bool _protected;

    public Cpu(CpuHost host, int index)
    {
        _host = host;
        _stats = host.Stats;
        _index = index;
        _apic = host.LocalApics is { } apics && index < apics.Count ? apics[index] : null;
        _codePageTracker = host.CodePages;
        _mmu = new Mmu(host.MemorySystem, _apic is null ? null : new LocalApicAccessHook(_apic))
        {
            // CPUID does not advertise 1 GiB pages (80000001H EDX[26]) but the walker has always mapped them, and
            // flat test guests rely on it; keep that.
            Supports1GbPages = true,
        };

        // Requests from other threads (TLB shootdown, a page that became code) make the run loop look at events,
        // where the MMU services them, so the per-instruction path needs no extra check.
        _mmu.RequestPosted = RequestAttention;
        _decoder16 = Decoder.Create(16, _reader, 0, DecoderOptions.None);
        _decoder32 = Decoder.Create(32, _reader, 0, DecoderOptions.None);
        _decoder64 = Decoder.Create(64, _reader, 0, DecoderOptions.None);
        InitMsrs();
        // DR6/DR7 power-on values (SDM Vol. 3A §17.2.4, §17.2.6).
        Dr[6] = 0xFFFF_0FF0;
        Dr[7] = 0x400;
        SetState(new CpuState());
    }

    public int Index => _index;

    internal CpuHost Host => _host;

    internal int Cpl => _cpl;

    internal int Bitness => _bitness;

    internal bool LongMode => _longMode;

    public void SetState(CpuState state)
    {
        var r = state.Registers;
        Gpr[0] = r.Rax;
        Gpr[1] = r.Rcx;
        Gpr[2] = r.Rdx;
        Gpr[3] = r.Rbx;
        Gpr[4] = r.Rsp;
        Gpr[5] = r.Rbp;
        Gpr[6] = r.Rsi;
        Gpr[7] = r.Rdi;
        Gpr[8] = r.R8;
        Gpr[9] = r.R9;
        Gpr[10] = r.R10;
        Gpr[11] = r.R11;
        Gpr[12] = r.R12;
        Gpr[13] = r.R13;
        Gpr[14] = r.R14;
        Gpr[15] = r.R15;
        Rip = r.Rip;
        SetRflags(r.Rflags);
        var s = state.System;
        Seg[SegEs] = s.Es;
        Seg[SegCs] = s.Cs;
        Seg[SegSs] = s.Ss;
        Seg[SegDs] = s.Ds;
        Seg[SegFs] = s.Fs;
        Seg[SegGs] = s.Gs;
        Tr = s.Tr;
        Ldtr = s.Ldt;
        Gdtr = s.Gdt;
        Idtr = s.Idt;
        Cr0 = s.Cr0;
        Cr2 = s.Cr2;
        Cr3 = s.Cr3;
        Cr4 = s.Cr4;
        Cr8 = s.Cr8;
        Efer = s.Efer;
        if (_apic is not null && s.ApicBase != 0)
        {
            _ = _apic.TryWriteMsr(MsrApicBase, s.ApicBase);
        }

        foreach (var kv in state.Msrs)
        {
            _ = WriteMsr(kv.Key, kv.Value);
        }

        _cpl = (Cr0 & Cr0Pe) == 0 ? 0 : Seg[SegCs].Dpl;
        UpdateMode();

        // A complete load without architectural checks: flushes the TLB, reads the PAE PDPTEs.
        _mmu.Load(PagingWith(Cr0, Cr4, Efer));
        _interruptShadow = false;
        _halted = false;
        _singleStepOnWake = false;
        // Loading state (boot, reset, snapshot restore) starts a fresh run: no shutdown or power-off pending, and no
        // decoded code from before (loaders write guest RAM directly, which the code tracker does not see).
        ClearDecodeCache();
        _shutdown = false;
        _poweredOff = false;
        _faultPending = false;
        _softwareVector = -1;
    }

    public CpuState GetState()
    {
        var st = new CpuState();
        st.Registers = new CpuRegisters
        {
            Rax = Gpr[0],
            Rcx = Gpr[1],
            Rdx = Gpr[2],
            Rbx = Gpr[3],
            Rsp = Gpr[4],
            Rbp = Gpr[5],
            Rsi = Gpr[6],
            Rdi = Gpr[7],
            R8 = Gpr[8],
            R9 = Gpr[9],
            R10 = Gpr[10],
            R11 = Gpr[11],
            R12 = Gpr[12],
            R13 = Gpr[13],
            R14 = Gpr[14],
            R15 = Gpr[15],
            Rip = Rip,
            Rflags = GetRflags(),
        };
        st.System = new SystemRegisters
        {
            Es = Seg[SegEs],
            Cs = Seg[SegCs],
            Ss = Seg[SegSs],
            Ds = Seg[SegDs],
            Fs = Seg[SegFs],
            Gs = Seg[SegGs],
            Tr = Tr,
            Ldt = Ldtr,
            Gdt = Gdtr,
            Idt = Idtr,
            Cr0 = Cr0,
            Cr2 = Cr2,
            Cr3 = Cr3,
            Cr4 = Cr4,
            Cr8 = Cr8,
            Efer = Efer,
            ApicBase = ReadApicBase(),
        };
        st.Msrs[MsrStar] = _star;
        st.Msrs[MsrLstar] = _lstar;
        st.Msrs[MsrCstar] = _cstar;
        st.Msrs[MsrSfmask] = _sfmask;
        st.Msrs[MsrKernelGsBase] = _kernelGsBase;
        st.Msrs[MsrPat] = _pat;
        st.Msrs[MsrTscAux] = _tscAux;
        st.Msrs[MsrSpecCtrl] = _specCtrl;
        return st;
    }

    /// <summary>Recomputes bitness/CPL-derived mode flags after CS, CR0 or EFER changed.</summary>
    internal void UpdateMode()
    {
        _protected = (Cr0 & Cr0Pe) != 0;
        _longMode = (Efer & EferLma) != 0;
        ref var cs = ref Seg[SegCs];
        if (_longMode && cs.Long)
        {
            _bitness = 64;
        }
        else if (_protected && cs.DefaultBig)
        {
            _bitness = 32;
        }
        else
        {
            _bitness = 16;
        }

        if (!_protected)
        {
            _cpl = 0;
        }
        else if ((_flags & FlagVm) != 0)
        {
            _cpl = 3;
        }

        SyncPrivilege();
        InvalidateFetchPage();
    }

    /// <summary>Detaches this vCPU's MMU from the VM's memory system.</summary>
    public void Dispose() => _mmu.Dispose();
}

/// <summary>The general registers RAX..R15 (index = register number), stored inline in <see cref="Cpu"/>.</summary>
[System.Runtime.CompilerServices.InlineArray(16)]
internal struct GprFile
{
    private ulong _element0;
}
