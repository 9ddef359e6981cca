// One KVM vCPU: the vCPU descriptor and its mmap'd kvm_run page, CPUID/MSR set-up, CpuState <-> kvm_regs/sregs, and
// the KVM_RUN loop that dispatches PIO/MMIO exits to the machine's buses in place.
// Documentation/virt/kvm/api.rst §4 (KVM_RUN, KVM_GET/SET_REGS, KVM_GET/SET_SREGS, KVM_SET_FPU, KVM_SET_MSRS,
// KVM_SET_CPUID2, KVM_GET/SET_MP_STATE) and §5 (struct kvm_run).
//
// What a PC BIOS leaves behind, set when the vCPU is created (the Linux 64-bit boot protocol enters the kernel with
// no firmware having run): CPUID (KvmCpuid), IA32_MISC_ENABLE with fast strings, the power-up PAT, MTRRs enabled with
// write-back as the default type and the 32-bit PCI hole uncachable (as SeaBIOS programs them; with MTRRs left
// disabled Linux 6.1 also turns PAT off), and on the boot vCPU the local APIC's LINT0 as ExtINT (the 8259's INTR in
// virtual-wire mode) and LINT1 as NMI (MP Spec 1.4 §3.6.2.2 / §5.3, matching the MP table's and MADT's local
// interrupt entries). SetState resets the FPU and XCR0.
//
// Application processors (index > 0) are left in the state KVM gives them with an in-kernel irqchip:
// KVM_MP_STATE_UNINITIALIZED (wait-for-SIPI); the in-kernel LAPIC handles INIT/SIPI from the BSP.
// With the in-kernel LAPIC, HLT is handled inside the kernel and never exits, so Run reports Halted when a kick
// finds the vCPU halted with RFLAGS.IF = 0 (nothing but NMI/INIT could wake it) or still waiting for SIPI.
using System.Runtime.InteropServices;
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Kvm.Native;

namespace Ringvisor.Kvm;

public sealed class KvmVcpu : IVcpu
{
    /// <summary>IA32_MISC_ENABLE (Intel SDM Vol. 4 Table 2-2); bit 0 = fast-strings enable.</summary>
    public const uint MsrMiscEnable = 0x1A0;
    public const ulong MiscEnableFastStrings = 1UL << 0;

    /// <summary>IA32_PAT and its power-up value WB, WT, UC-, UC, WB, WT, UC-, UC (Intel SDM Vol. 3A §12.12.4).</summary>
    public const uint MsrPat = 0x277;
    public const ulong PatPowerUp = 0x0007_0406_0007_0406;

    /// <summary>IA32_MTRR_DEF_TYPE (Intel SDM Vol. 3A §12.11.2.1): bits 7:0 default type, bit 10 FE, bit 11 E.</summary>
    public const uint MsrMtrrDefType = 0x2FF;

    /// <summary>IA32_MTRR_PHYSBASE0 / IA32_MTRR_PHYSMASK0 (Intel SDM Vol. 3A §12.11.2.3).</summary>
    public const uint MsrMtrrPhysBase0 = 0x200;
    public const uint MsrMtrrPhysMask0 = 0x201;

    /// <summary>IA32_MTRR_DEF_TYPE.E: MTRRs enabled (fixed ranges stay disabled: FE = 0).</summary>
    public const ulong MtrrEnable = 1UL << 11;

    /// <summary>IA32_MTRR_PHYSMASKn bit 11: the variable range is valid.</summary>
    public const ulong MtrrMaskValid = 1UL << 11;

    /// <summary>Memory types (Intel SDM Vol. 3A Table 12-8): uncachable and write-back.</summary>
    public const ulong MemoryTypeUncachable = 0;
    public const ulong MemoryTypeWriteBack = 6;

    /// <summary>Local APIC LVT registers for LINT0/LINT1 (Intel SDM Vol. 3A Table 10-1).</summary>
    public const int LapicLvtLint0 = 0x350;
    public const int LapicLvtLint1 = 0x360;

    /// <summary>LVT delivery modes in bits 10:8 (Intel SDM Vol. 3A §10.5.1): NMI = 100b, ExtINT = 111b; bit 16 = masked.</summary>
    public const uint LvtDeliveryNmi = 0b100 << 8;
    public const uint LvtDeliveryExtInt = 0b111 << 8;
    public const uint LvtMasked = 1u << 16;

    /// <summary>XCR0 bits x87 | SSE | AVX (Intel SDM Vol. 1 §13.3): what SetState enables when the state has CR4.OSXSAVE.</summary>
    public const ulong Xcr0X87SseAvx = 0b111;

    /// <summary>XCR0 after RESET: x87 only (Intel SDM Vol. 1 §13.3).</summary>
    public const ulong Xcr0Reset = 1;

    /// <summary>CR4.OSXSAVE (Intel SDM Vol. 3A §2.5): XSETBV/XGETBV usable, XCR0 meaningful.</summary>
    private const ulong Cr4Osxsave = 1UL << 18;

    /// <summary>RFLAGS.IF (Intel SDM Vol. 1 §3.4.3.2).</summary>
    private const ulong RflagsIf = 1UL << 9;

    /// <summary>
    /// MSRs GetState reads back (those not already in kvm_sregs): SYSENTER_CS/ESP/EIP, MISC_ENABLE, PAT, STAR, LSTAR,
    /// CSTAR, SFMASK, KERNEL_GS_BASE, TSC_AUX (Intel SDM Vol. 4 Table 2-2). The TSC is left out: writing an old
    /// value back would move guest time.
    /// </summary>
    private static readonly uint[] s_stateMsrs =
    [
        0x174, 0x175, 0x176, MsrMiscEnable, MsrPat, MsrMtrrDefType, MsrMtrrPhysBase0, MsrMtrrPhysMask0,
        0xC000_0081, 0xC000_0082, 0xC000_0083, 0xC000_0084, 0xC000_0102, 0xC000_0103,
    ];

    private readonly FileDescriptorHandle _fdHandle;
    private readonly int _fd;
    private readonly nint _runMap;
    private readonly int _runMapSize;
    private readonly IoBus _pio;
    private readonly IoBus _mmio;
    private readonly KvmCpuidEntry2[] _cpuid;
    private readonly bool _hasXcrs;

    // Guards _runThread and _disposed between Run (vCPU thread), Kick (any thread) and Dispose.
    private readonly object _gate = new();
    private nuint _runThread;
    private bool _disposed;

    internal KvmVcpu(KvmVm vm, int index, IoBus pio, IoBus mmio, ReadOnlySpan<KvmCpuidEntry2> supportedCpuid,
        IReadOnlyDictionary<(uint Leaf, uint Subleaf), (uint Eax, uint Ebx, uint Ecx, uint Edx)>? cpuidOverrides,
        bool tscDeadlineTimer = false)
    {
        VcpuKickSignal.EnsureInstalled();
        Index = index;
        _pio = pio;
        _mmio = mmio;
        _fdHandle = vm.CreateVcpuFd(index);
        _fd = _fdHandle.Fd;
        _runMapSize = vm.System.VcpuMmapSize;
        _runMap = LibC.mmap(0, (nuint)_runMapSize, LibC.ProtRead | LibC.ProtWrite, LibC.MapShared, _fd, 0);
        if (_runMap == LibC.MapFailed)
        {
            int errno = Marshal.GetLastPInvokeError();
            _fdHandle.Dispose();
            throw new KvmException($"mmap of kvm_run for vCPU {index} failed: {LibC.Describe(errno)}") { Errno = errno };
        }

        _cpuid = KvmCpuid.Build(supportedCpuid, index, cpuidOverrides, tscDeadlineTimer);
        _hasXcrs = vm.System.CheckExtension(KvmCapability.Xcrs) > 0;
        try
        {
            // CPUID first: KVM checks MSR writes (and later CR4 bits) against the guest's CPUID.
            SetCpuid(_cpuid);
            SetMsrs(FirmwareMsrs(_cpuid));
            if (index == 0)
            {
                SetLocalInterruptPins();
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int Index { get; }

    /// <summary>The in-kernel multiprocessing state (KVM_GET/SET_MP_STATE): runnable, waiting for SIPI, halted...</summary>
    public unsafe KvmMpStateValue MpState
    {
        get
        {
            KvmMpState s;
            Ioctl(KvmIoctl.GetMpState, &s, "KVM_GET_MP_STATE");
            return (KvmMpStateValue)s.MpState;
        }

        set
        {
            var s = new KvmMpState { MpState = (uint)value };
            Ioctl(KvmIoctl.SetMpState, &s, "KVM_SET_MP_STATE");
        }
    }

    /// <summary>
    /// Reads a 32-bit register of the in-kernel LAPIC (KVM_GET_LAPIC) at <paramref name="offset"/> within the xAPIC
    /// page, e.g. 0x20 = APIC ID (Intel SDM Vol. 3A Table 10-1). Only while the vCPU is not running.
    /// </summary>
    public unsafe uint ReadLapicRegister(int offset)
    {
        if (offset < 0 || offset > KvmLapicState.Size - sizeof(uint) || (offset & 0xF) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, "xAPIC registers are 16-byte aligned within the first 1 KiB");
        }

        KvmLapicState lapic;
        Ioctl(KvmIoctl.GetLapic, &lapic, "KVM_GET_LAPIC");
        // SAFETY: offset was checked to leave 4 bytes inside the 1 KiB register image.
        return *(uint*)(lapic.Regs + offset);
    }

    /// <summary>
    /// XCR0 (KVM_GET_XCRS / KVM_SET_XCRS). Only while the vCPU is not running.
    /// </summary>
    /// <exception cref="KvmException">The host KVM has no KVM_CAP_XCRS, or refused the value.</exception>
    public unsafe ulong Xcr0
    {
        get
        {
            RequireXcrs();
            KvmXcrs xcrs;
            Ioctl(KvmIoctl.GetXcrs, &xcrs, "KVM_GET_XCRS");
            for (int i = 0; i < Math.Min((int)xcrs.NrXcrs, KvmXcrs.MaxXcrs); i++)
            {
                if (xcrs.XcrIndex(i) == 0)
                {
                    return xcrs.XcrValue(i);
                }
            }

            return Xcr0Reset;
        }

        set
        {
            RequireXcrs();
            var xcrs = new KvmXcrs { NrXcrs = 1 };
            xcrs.SetXcr(0, 0, value);
            Ioctl(KvmIoctl.SetXcrs, &xcrs, "KVM_SET_XCRS");
        }
    }

    /// <summary>The CPUID table this vCPU was given (KVM_SET_CPUID2).</summary>
    internal ReadOnlySpan<KvmCpuidEntry2> Cpuid => _cpuid;

    /// <summary>
    /// The MSRs a BIOS leaves programmed: fast strings, the power-up PAT and, when CPUID advertises MTRRs, MTRRs
    /// enabled with write-back default and the 32-bit PCI hole [0xC0000000, 4 GiB) uncachable through variable
    /// range 0 (the SeaBIOS layout; Linux 6.1 disables PAT when it finds MTRRs disabled). Fixed-range MTRRs stay
    /// off (FE = 0), so the first MiB follows the default type. Every vCPU gets the same values: Linux checks that
    /// the MTRRs of all CPUs agree.
    /// </summary>
    internal static List<(uint Index, ulong Value)> FirmwareMsrs(ReadOnlySpan<KvmCpuidEntry2> cpuid)
    {
        var msrs = new List<(uint, ulong)> { (MsrMiscEnable, MiscEnableFastStrings), (MsrPat, PatPowerUp) };
        if (KvmCpuid.HasMtrr(cpuid))
        {
            const ulong holeStart = Ringvisor.Core.Memory.MemoryLayout.PciHoleStart;
            const ulong holeSize = Ringvisor.Core.Memory.MemoryLayout.HighMemoryStart - holeStart;
            int bits = KvmCpuid.PhysicalAddressBits(cpuid);
            ulong addressMask = bits >= 64 ? ulong.MaxValue : (1UL << bits) - 1;
            msrs.Add((MsrMtrrPhysBase0, holeStart | MemoryTypeUncachable));
            msrs.Add((MsrMtrrPhysMask0, (~(holeSize - 1) & addressMask) | MtrrMaskValid));
            msrs.Add((MsrMtrrDefType, MtrrEnable | MemoryTypeWriteBack));
        }

        return msrs;
    }

    private unsafe Span<byte> RunPage
    {
        get
        {
            // SAFETY: _runMap is a live MAP_SHARED mapping of _runMapSize bytes until Dispose, which waits for Run to end.
            return new Span<byte>((void*)_runMap, _runMapSize);
        }
    }

    public unsafe void SetState(CpuState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        ThrowIfDisposed();

        // System registers first, so that RIP/RFLAGS are interpreted in the mode they belong to.
        KvmSregs sregs;
        Ioctl(KvmIoctl.GetSregs, &sregs, "KVM_GET_SREGS");
        KvmStateMapper.ToKvm(state.System, ref sregs, Index);
        Ioctl(KvmIoctl.SetSregs, &sregs, "KVM_SET_SREGS");

        var regs = KvmStateMapper.ToKvm(state.Registers);
        Ioctl(KvmIoctl.SetRegs, &regs, "KVM_SET_REGS");

        var fpu = KvmStateMapper.ResetFpu();
        Ioctl(KvmIoctl.SetFpu, &fpu, "KVM_SET_FPU");

        // CpuState carries no XCR0: RESET's x87-only value, or x87|SSE|AVX (as far as KVM allows) for a state that
        // already has CR4.OSXSAVE, as an OS that enabled XSAVE would have left it. Linux sets XCR0 itself.
        if (_hasXcrs)
        {
            bool osxsave = (state.System.Cr4 & Cr4Osxsave) != 0;
            Xcr0 = osxsave ? (KvmCpuid.SupportedXcr0(_cpuid) & Xcr0X87SseAvx) | Xcr0Reset : Xcr0Reset;
        }

        if (state.Msrs.Count > 0)
        {
            var list = new List<(uint, ulong)>(state.Msrs.Count);
            foreach (var kv in state.Msrs)
            {
                list.Add((kv.Key, kv.Value));
            }

            SetMsrs(list);
        }
    }

    public unsafe CpuState GetState()
    {
        ThrowIfDisposed();
        KvmRegs regs;
        KvmSregs sregs;
        Ioctl(KvmIoctl.GetRegs, &regs, "KVM_GET_REGS");
        Ioctl(KvmIoctl.GetSregs, &sregs, "KVM_GET_SREGS");
        var state = new CpuState
        {
            Registers = KvmStateMapper.FromKvm(regs),
            System = KvmStateMapper.FromKvm(sregs),
        };
        foreach (uint msr in s_stateMsrs)
        {
            if (TryGetMsr(msr, out ulong value))
            {
                state.Msrs[msr] = value;
            }
        }

        return state;
    }

    public VcpuExit Run()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_runThread != 0)
            {
                throw new InvalidOperationException($"vCPU {Index}: Run is already executing on another thread");
            }

            VcpuKickSignal.UnblockOnCurrentThread();
            _runThread = LibC.pthread_self();
        }

        try
        {
            return RunLoop();
        }
        finally
        {
            lock (_gate)
            {
                _runThread = 0;
                Monitor.PulseAll(_gate);
            }
        }
    }

    /// <summary>See VcpuKickSignal for the mechanism: immediate_exit plus a signal to the thread inside Run.</summary>
    public void Kick()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            Volatile.Write(ref MemoryMarshal.AsRef<KvmRun>(RunPage).ImmediateExit, 1);
            if (_runThread != 0)
            {
                _ = VcpuKickSignal.Send(_runThread);
            }
        }
    }

    // The hot loop: no allocation per exit; PIO/MMIO data is read and written in the mmap'd kvm_run page.
    private VcpuExit RunLoop()
    {
        while (true)
        {
            int rc = LibC.ioctl(_fd, KvmIoctl.Run, 0);
            Span<byte> page = RunPage;
            ref KvmRun run = ref MemoryMarshal.AsRef<KvmRun>(page);
            if (rc < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == LibC.EAgain)
                {
                    // An application processor in wait-for-SIPI woke up for INIT/SIPI (api.rst: KVM_RUN on an
                    // UNINITIALIZED vCPU returns -EAGAIN after accepting events): enter again to run it.
                    continue;
                }

                if (errno == LibC.EIntr)
                {
                    if (TryTakeKick(ref run))
                    {
                        return KickedOrHalted();
                    }

                    // A signal that is not ours (the runtime's, a profiler's): nothing to report, re-enter.
                    continue;
                }

                return WithRip(new VcpuExit(VcpuExitReason.Error, $"KVM_RUN failed: {LibC.Describe(errno)}"));
            }

            switch ((KvmExitReason)run.ExitReason)
            {
                case KvmExitReason.Io:
                    if (!KvmExitDispatcher.DispatchIo(page, _pio))
                    {
                        return WithRip(new VcpuExit(VcpuExitReason.Error,
                            $"KVM_EXIT_IO with an impossible access (port 0x{run.Io.Port:X}, size {run.Io.Size}, count {run.Io.Count}, data offset {run.Io.DataOffset})"));
                    }

                    break;
                case KvmExitReason.Mmio:
                    if (!KvmExitDispatcher.DispatchMmio(page, _mmio))
                    {
                        return WithRip(new VcpuExit(VcpuExitReason.Error,
                            $"KVM_EXIT_MMIO with an impossible length {run.Mmio.Len} at 0x{run.Mmio.PhysAddr:X}"));
                    }

                    break;
                case KvmExitReason.Intr:
                    if (TryTakeKick(ref run))
                    {
                        return KickedOrHalted();
                    }

                    break;
                case KvmExitReason.IrqWindowOpen:
                    // Never requested (the in-kernel irqchip injects interrupts itself); harmless.
                    break;
                default:
                    var exit = KvmExitDispatcher.Describe(page);
                    return exit.Reason == VcpuExitReason.Error ? WithRip(exit) : exit;
            }
        }
    }

    private static bool TryTakeKick(ref KvmRun run)
    {
        if (Volatile.Read(ref run.ImmediateExit) == 0)
        {
            return false;
        }

        Volatile.Write(ref run.ImmediateExit, 0);
        return true;
    }

    /// <summary>
    /// A kicked vCPU that cannot run again without an outside event reports Halted: HLT with RFLAGS.IF = 0, or an
    /// application processor still waiting for INIT/SIPI (only another vCPU can start it). The machine uses this to
    /// detect "every vCPU halted with interrupts disabled".
    /// </summary>
    private unsafe VcpuExit KickedOrHalted()
    {
        var mp = MpState;
        if (mp is KvmMpStateValue.Uninitialized or KvmMpStateValue.InitReceived)
        {
            return new VcpuExit(VcpuExitReason.Halted, "waiting for INIT/SIPI");
        }

        if (mp == KvmMpStateValue.Halted)
        {
            KvmRegs regs;
            Ioctl(KvmIoctl.GetRegs, &regs, "KVM_GET_REGS");
            if ((regs.Rflags & RflagsIf) == 0)
            {
                return new VcpuExit(VcpuExitReason.Halted);
            }
        }

        return new VcpuExit(VcpuExitReason.Kicked);
    }

    private unsafe VcpuExit WithRip(VcpuExit exit)
    {
        KvmRegs regs;
        KvmSregs sregs;
        if (LibC.ioctl(_fd, KvmIoctl.GetRegs, (nint)(&regs)) < 0 || LibC.ioctl(_fd, KvmIoctl.GetSregs, (nint)(&sregs)) < 0)
        {
            return exit;
        }

        return exit with { Detail = $"{exit.Detail} (vCPU {Index} at cs:rip {sregs.Cs.Selector:X4}:{regs.Rip:X}, cr0 0x{sregs.Cr0:X})" };
    }

    /// <summary>LINT0 = ExtINT and LINT1 = NMI, both unmasked and edge-triggered, through KVM_GET/SET_LAPIC.</summary>
    private unsafe void SetLocalInterruptPins()
    {
        KvmLapicState lapic;
        Ioctl(KvmIoctl.GetLapic, &lapic, "KVM_GET_LAPIC");
        // SAFETY: both offsets are 16-byte aligned registers inside the 1 KiB image.
        *(uint*)(lapic.Regs + LapicLvtLint0) = LvtDeliveryExtInt;
        *(uint*)(lapic.Regs + LapicLvtLint1) = LvtDeliveryNmi;
        Ioctl(KvmIoctl.SetLapic, &lapic, "KVM_SET_LAPIC");
    }

    private void RequireXcrs()
    {
        if (!_hasXcrs)
        {
            throw new KvmException($"vCPU {Index}: the host KVM lacks KVM_CAP_XCRS, so XCR0 cannot be read or set");
        }
    }

    private unsafe void SetCpuid(KvmCpuidEntry2[] entries)
    {
        byte[] buffer = new byte[KvmCpuid2.Size + (entries.Length * KvmCpuidEntry2.Size)];
        fixed (byte* p = buffer)
        {
            // SAFETY: the buffer holds the header plus entries.Length entries, as nent says.
            ((KvmCpuid2*)p)->Nent = (uint)entries.Length;
            entries.AsSpan().CopyTo(new Span<KvmCpuidEntry2>(p + KvmCpuid2.Size, entries.Length));
            Ioctl(KvmIoctl.SetCpuid2, p, "KVM_SET_CPUID2");
        }
    }

    private unsafe void SetMsrs(IReadOnlyList<(uint Index, ulong Value)> msrs)
    {
        byte[] buffer = new byte[KvmMsrs.Size + (msrs.Count * KvmMsrEntry.Size)];
        fixed (byte* p = buffer)
        {
            // SAFETY: the buffer holds the header plus msrs.Count entries, as nmsrs says.
            ((KvmMsrs*)p)->Nmsrs = (uint)msrs.Count;
            var entries = new Span<KvmMsrEntry>(p + KvmMsrs.Size, msrs.Count);
            for (int i = 0; i < msrs.Count; i++)
            {
                entries[i] = new KvmMsrEntry { Index = msrs[i].Index, Data = msrs[i].Value };
            }

            int set = LibC.ioctl(_fd, KvmIoctl.SetMsrs, (nint)p);
            if (set < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw new KvmException($"KVM_SET_MSRS on vCPU {Index} failed: {LibC.Describe(errno)}") { Errno = errno };
            }

            // KVM stops at the first MSR it refuses and returns how many it set.
            if (set < msrs.Count)
            {
                throw new KvmException($"KVM_SET_MSRS on vCPU {Index}: KVM refused MSR 0x{msrs[set].Index:X} = 0x{msrs[set].Value:X}");
            }
        }
    }

    private unsafe bool TryGetMsr(uint index, out ulong value)
    {
        byte* p = stackalloc byte[KvmMsrs.Size + KvmMsrEntry.Size];
        // SAFETY: p holds the header and exactly one entry.
        ((KvmMsrs*)p)->Nmsrs = 1;
        var entry = (KvmMsrEntry*)(p + KvmMsrs.Size);
        *entry = new KvmMsrEntry { Index = index };
        bool ok = LibC.ioctl(_fd, KvmIoctl.GetMsrs, (nint)p) == 1;
        value = ok ? entry->Data : 0;
        return ok;
    }

    // SAFETY: callers pass the address of a local of exactly the struct type the request number encodes (sizes are
    // asserted in KvmInteropLayoutTests), alive for the duration of the call.
    private unsafe void Ioctl(uint request, void* arg, string what)
    {
        ThrowIfDisposed();
        if (LibC.ioctl(_fd, request, (nint)arg) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new KvmException($"{what} on vCPU {Index} failed: {LibC.Describe(errno)}") { Errno = errno };
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>Waits (briefly) for a running Run to return before unmapping kvm_run and closing the descriptor.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            if (_runThread != 0)
            {
                Volatile.Write(ref MemoryMarshal.AsRef<KvmRun>(RunPage).ImmediateExit, 1);
                _ = VcpuKickSignal.Send(_runThread);
                if (!Monitor.Wait(_gate, TimeSpan.FromSeconds(5)) || _runThread != 0)
                {
                    // Still inside KVM_RUN: unmapping under it would crash the process. Leak the page and fd instead.
                    _disposed = true;
                    return;
                }
            }

            _disposed = true;
            _ = LibC.munmap(_runMap, (nuint)_runMapSize);
            _fdHandle.Dispose();
        }
    }
}
