// One KVM vCPU: the vCPU descriptor and its mmap'd kvm_run page, CPUID/MSR set-up, CpuState <-> kvm_regs/sregs, and
// the KVM_RUN loop that dispatches PIO/MMIO exits to the machine's buses in place.
// Documentation/virt/kvm/api.rst §4 (KVM_RUN, KVM_GET/SET_REGS, KVM_GET/SET_SREGS, KVM_SET_FPU, KVM_SET_MSRS,
// KVM_SET_CPUID2, KVM_GET/SET_MP_STATE) and §5 (struct kvm_run).
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

    /// <summary>RFLAGS.IF (Intel SDM Vol. 1 §3.4.3.2).</summary>
    private const ulong RflagsIf = 1UL << 9;

    /// <summary>
    /// MSRs GetState reads back (those not already in kvm_sregs): SYSENTER_CS/ESP/EIP, MISC_ENABLE, PAT, STAR, LSTAR,
    /// CSTAR, SFMASK, KERNEL_GS_BASE, TSC_AUX (Intel SDM Vol. 4 Table 2-2). The TSC is left out: writing an old
    /// value back would move guest time.
    /// </summary>
    private static readonly uint[] s_stateMsrs =
    [
        0x174, 0x175, 0x176, MsrMiscEnable, MsrPat,
        0xC000_0081, 0xC000_0082, 0xC000_0083, 0xC000_0084, 0xC000_0102, 0xC000_0103,
    ];

    private readonly FileDescriptorHandle _fdHandle;
    private readonly int _fd;
    private readonly nint _runMap;
    private readonly int _runMapSize;
    private readonly IoBus _pio;
    private readonly IoBus _mmio;

    // Guards _runThread and _disposed between Run (vCPU thread), Kick (any thread) and Dispose.
    private readonly object _gate = new();
    private nuint _runThread;
    private bool _disposed;

    internal KvmVcpu(KvmVm vm, int index, IoBus pio, IoBus mmio, ReadOnlySpan<KvmCpuidEntry2> supportedCpuid,
        IReadOnlyDictionary<(uint Leaf, uint Subleaf), (uint Eax, uint Ebx, uint Ecx, uint Edx)>? cpuidOverrides)
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

        try
        {
            SetCpuid(KvmCpuid.Build(supportedCpuid, index, cpuidOverrides));
            SetMsrs([(MsrMiscEnable, MiscEnableFastStrings), (MsrPat, PatPowerUp)]);
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
