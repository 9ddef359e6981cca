// A local APIC in xAPIC mode (Intel SDM Vol. 3A chapter 10: Table 10-1 register map, §10.5 LVT and timer, §10.6
// ICR and IPIs, §10.8 priorities, EOI and the IRR/ISR/TMR, §10.9 spurious vector, §10.12 IA32_APIC_BASE), for the bt
// engine (KVM has its own). One per vCPU; implements Core's ILocalInterruptController.
//
// Wiring: var lapic = new LocalApic(index, apicId: (byte)index, bus, time, timers); the engine calls Read/Write for
// accesses to the page at MmioBase on the vCPU that made them (all vCPUs share the address), TryReadMsr/TryWriteMsr
// for IA32_APIC_BASE (0x1B) and IA32_TSC_DEADLINE (0x6E0), HasInterrupt/AcknowledgeInterrupt at instruction
// boundaries with RFLAGS.IF = 1, TakeNmi/TakeInit/TryTakeStartup, and AttachWakeup once. x2APIC is not supported:
// the x2APIC MSRs 0x800-0x8FF and setting IA32_APIC_BASE.EXTD are refused (#GP), so CPUID must not advertise it.
//
// The timer counts at 1 GHz before the divide configuration (one tick per nanosecond of ITimeSource time, the bus
// clock KVM also presents); TSC-deadline compares against the guest TSC = ITimeSource time at TscFrequency.
//
// Virtual wire: the BSP's LINT0 carries the PIC's INT (ApicBus.ConnectPic). ExtINT interrupts from the PIC are
// delivered when the APIC is hardware- or software-disabled (the reset state, so PIC-only guests work) or LINT0 is
// unmasked in ExtINT mode; they bypass the IRR/ISR and TPR (§10.5.1 ExtINT).
//
// Locking: one lock per LAPIC; it is never held while calling the PIC, the IOAPIC or another LAPIC, so the lock order
// is always IOAPIC/PIC -> LAPIC.
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Interrupts;
using Ringvisor.Devices.Legacy;
using Ringvisor.Devices.Platform.Timing;

namespace Ringvisor.Devices.Platform;

public sealed class LocalApic : ILocalInterruptController, IDisposable
{
    public const int StateVersion = 1;

    public const uint MsrApicBase = 0x1B; // IA32_APIC_BASE (SDM Vol. 3A §10.4.4)
    public const uint MsrTscDeadline = 0x6E0; // IA32_TSC_DEADLINE (§10.5.4.1)

    // IA32_APIC_BASE bits (§10.4.4 Figure 10-5).
    private const ulong BaseBsp = 1UL << 8;
    private const ulong BaseX2Apic = 1UL << 10;
    private const ulong BaseEnable = 1UL << 11;
    // The bt CPU's MAXPHYADDR is 40 (CPUID 0x80000008, Emulator Mmu.PhysicalAddressBits): base bits 40+ are reserved
    // and a write setting them is #GP (SDM Vol. 3A §11.4.4, Figure 11-5).
    private const ulong BaseAddressMask = 0x0000_00FF_FFFF_F000;
    private const ulong BaseReservedMask = ~(BaseAddressMask | BaseBsp | BaseX2Apic | BaseEnable);
    private const ulong DefaultBase = 0xFEE0_0000;

    // Register offsets (Table 10-1).
    private const int RegId = 0x20;
    private const int RegVersion = 0x30;
    private const int RegTpr = 0x80;
    private const int RegApr = 0x90;
    private const int RegPpr = 0xA0;
    private const int RegEoi = 0xB0;
    private const int RegRrd = 0xC0;
    private const int RegLdr = 0xD0;
    private const int RegDfr = 0xE0;
    private const int RegSvr = 0xF0;
    private const int RegIsr = 0x100;
    private const int RegTmr = 0x180;
    private const int RegIrr = 0x200;
    private const int RegEsr = 0x280;
    private const int RegLvtCmci = 0x2F0;
    private const int RegIcrLow = 0x300;
    private const int RegIcrHigh = 0x310;
    private const int RegLvtTimer = 0x320;
    private const int RegLvtError = 0x370;
    private const int RegInitialCount = 0x380;
    private const int RegCurrentCount = 0x390;
    private const int RegDivide = 0x3E0;

    // Version register: version 0x14 (integrated APIC), max LVT entry 6 (CMCI..error: 7 entries).
    private const uint VersionValue = 0x0006_0014;

    private const int LvtCount = 7;
    private const int LvtCmci = 0;
    private const int LvtTimer = 1;
    private const int LvtLint0 = 4;
    private const int LvtLint1 = 5;
    private const int LvtError = 6;

    private const uint LvtMasked = 1 << 16;
    private const uint LvtVectorMask = 0xFF;
    private const uint LvtTimerModeMask = 3 << 17;
    private const uint LvtTimerPeriodic = 1 << 17;
    private const uint LvtTimerTscDeadline = 2 << 17;

    // Writable bits per LVT (§10.5.1 Figure 10-8): CMCI, timer, thermal, perf, LINT0, LINT1, error.
    private static readonly uint[] s_lvtWritable = [0x107FF, 0x700FF, 0x107FF, 0x107FF, 0x1A7FF, 0x1A7FF, 0x100FF];

    private const uint SvrEnable = 1 << 8;
    private const uint SvrWritable = 0x3FF; // vector, APIC software enable, focus processor checking
    private const uint DfrFlat = 0xF000_0000;
    private const uint DfrReadAsOnes = 0x0FFF_FFFF;

    // ESR bits (§10.5.3).
    private const uint EsrSendIllegalVector = 1 << 5;
    private const uint EsrReceiveIllegalVector = 1 << 6;
    private const uint EsrIllegalRegister = 1 << 7;

    // ICR bits (§10.6.1 Figure 10-12).
    private const uint IcrDestinationLogical = 1 << 11;
    private const uint IcrLevelAssert = 1 << 14;
    private const uint IcrTriggerLevel = 1 << 15;
    private const uint IcrLowWritable = 0x000C_CFFF; // vector, mode, dest mode, level, trigger, shorthand

    // Vectors 0-15 are reserved; a fixed interrupt with one is an illegal vector (§10.5.3).
    private const int MinLegalVector = 16;

    // Periodic timers faster than this are stretched, so a guest cannot make the host timer thread spin.
    private const long MinPeriodNanoseconds = 50_000;
    private const long NanosecondsPerSecond = 1_000_000_000;

    private readonly object _gate = new();
    private readonly ApicBus _bus;
    private readonly ITimeSource _time;
    private readonly IDeviceTimer _timer;
    private readonly uint[] _isr = new uint[8];
    private readonly uint[] _tmr = new uint[8];
    private readonly uint[] _irr = new uint[8];
    private readonly uint[] _lvt = new uint[LvtCount];
    private IVcpuWakeup? _wakeup;
    private Pic8259Pair? _pic;
    private byte _id;
    private readonly byte _initialId;
    private ulong _apicBase;
    private uint _tpr;
    private uint _ldr;
    private uint _dfr;
    private uint _svr;
    private uint _esr;
    private uint _esrPending;
    private uint _icrLow;
    private uint _icrHigh;
    private uint _initialCount;
    private uint _divide;
    private volatile bool _timerRunning;
    private long _timerStartNs;
    private long _timerDeadlineNs;
    private ulong _tscDeadline;
    private int _pendingNmis;
    private bool _initPending;
    private bool _startupPending;
    private byte _startupVector;
    private volatile bool _extIntMessage; // an ExtINT message (IOAPIC pin in ExtINT mode) is waiting for the PIC's INTA
    private volatile bool _lint0Level;

    // Summary of "IRR is not empty", written under the lock, read without it by HasInterrupt's fast path.
    private volatile bool _irrAny;

    public LocalApic(int index, byte apicId, ApicBus bus, ITimeSource time, IDeviceTimerFactory timers)
    {
        ArgumentNullException.ThrowIfNull(bus);
        ArgumentNullException.ThrowIfNull(timers);
        Index = index;
        _bus = bus;
        _time = time;
        _id = apicId;
        _initialId = apicId;
        _apicBase = DefaultBase | BaseEnable | (index == 0 ? BaseBsp : 0);
        ResetRegisters();
        _timer = timers.Create(OnTimer);
        bus.Attach(this);
    }

    /// <summary>The vCPU index this LAPIC belongs to.</summary>
    public int Index { get; }

    /// <summary>The xAPIC ID (ID register bits 31:24).</summary>
    public byte Id
    {
        get
        {
            lock (_gate)
            {
                return _id;
            }
        }
    }

    public ulong? MmioBase
    {
        get
        {
            lock (_gate)
            {
                return (_apicBase & BaseEnable) != 0 ? _apicBase & BaseAddressMask : null;
            }
        }
    }

    /// <summary>Processor priority (PPR, §10.8.3.1).</summary>
    public uint ProcessorPriority
    {
        get
        {
            lock (_gate)
            {
                return Ppr();
            }
        }
    }

    public bool HasInterrupt
    {
        get
        {
            // Fast path for the engine's per-block check, without the lock: nothing requested, no timer due, and
            // the PIC's INT (LINT0) low. A request racing with this check calls Wake, so the vCPU looks again.
            if (!_irrAny && !_lint0Level && !_extIntMessage &&
                (!_timerRunning || _time.NowNanoseconds < Volatile.Read(ref _timerDeadlineNs)))
            {
                return false;
            }

            bool extInt;
            lock (_gate)
            {
                ServiceTimer(_time.NowNanoseconds);
                if (DeliverableFixedVector() >= 0)
                {
                    return true;
                }

                extInt = ExtIntAllowed();
            }

            return extInt && _pic is { } pic && pic.HasInterrupt;
        }
    }

    internal byte LogicalId
    {
        get
        {
            lock (_gate)
            {
                return (byte)(_ldr >> 24);
            }
        }
    }

    internal bool FlatModel
    {
        get
        {
            lock (_gate)
            {
                return (_dfr & DfrFlat) == DfrFlat;
            }
        }
    }

    /// <summary>Lowest-priority arbitration key: the task priority (lower wins).</summary>
    internal int ArbitrationPriority
    {
        get
        {
            lock (_gate)
            {
                return (int)(_tpr & 0xF0);
            }
        }
    }

    public int AcknowledgeInterrupt()
    {
        Pic8259Pair? pic;
        lock (_gate)
        {
            ServiceTimer(_time.NowNanoseconds);
            int vector = DeliverableFixedVector();
            if (vector >= 0)
            {
                ClearBit(_irr, vector);
                _irrAny = HighestBit(_irr) >= 0;
                SetBit(_isr, vector);
                return vector;
            }

            pic = ExtIntAllowed() ? _pic : null;
            _extIntMessage = false;
        }

        // The PIC's INTA runs outside our lock (lock order PIC -> LAPIC).
        return pic is not null && pic.HasInterrupt ? pic.Acknowledge() : -1;
    }

    public bool TakeNmi()
    {
        lock (_gate)
        {
            if (_pendingNmis == 0)
            {
                return false;
            }

            _pendingNmis--;
            return true;
        }
    }

    public bool TakeInit()
    {
        lock (_gate)
        {
            bool init = _initPending;
            _initPending = false;
            return init;
        }
    }

    public bool TryTakeStartup(out byte vector)
    {
        lock (_gate)
        {
            vector = _startupVector;
            bool pending = _startupPending;
            _startupPending = false;
            return pending;
        }
    }

    public void AttachWakeup(IVcpuWakeup wakeup)
    {
        ArgumentNullException.ThrowIfNull(wakeup);
        lock (_gate)
        {
            _wakeup = wakeup;
        }
    }

    public void Read(ulong offset, Span<byte> data)
    {
        uint value;
        lock (_gate)
        {
            // Registers are 32 bits on 16-byte boundaries (§10.4.1); bytes 4-15 of each slot read as 0.
            value = (offset & 0xF) < 4 && offset < 0x1000 ? ReadRegister((int)(offset & 0xFF0)) : 0;
        }

        PortValue.Set(data, (ulong)value >> (int)((offset & 3) * 8));
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        // The SDM requires 32-bit aligned accesses; anything else is dropped rather than guessed at.
        if ((offset & 0xF) != 0 || data.Length < 4 || offset >= 0x1000)
        {
            return;
        }

        WriteRegister((int)offset, (uint)PortValue.Get(data[..4]));
    }

    public bool TryReadMsr(uint msr, out ulong value)
    {
        lock (_gate)
        {
            switch (msr)
            {
                case MsrApicBase:
                    value = _apicBase;
                    return true;
                case MsrTscDeadline:
                    ServiceTimer(_time.NowNanoseconds);
                    value = _tscDeadline;
                    return true;
                default:
                    value = 0;
                    return false; // includes x2APIC 0x800-0x8FF: unsupported, #GP
            }
        }
    }

    public bool TryWriteMsr(uint msr, ulong value)
    {
        bool wake = false;
        lock (_gate)
        {
            switch (msr)
            {
                case MsrApicBase:
                    if ((value & (BaseReservedMask | BaseX2Apic)) != 0)
                    {
                        return false;
                    }

                    bool wasEnabled = (_apicBase & BaseEnable) != 0;
                    _apicBase = (value & ~BaseBsp) | (_apicBase & BaseBsp); // BSP flag is read-only
                    if (wasEnabled && (value & BaseEnable) == 0)
                    {
                        // A globally disabled APIC comes back in its power-up state (§10.4.3).
                        ResetRegisters();
                        StopTimer();

                        // ...including the ID a guest may have written (KVM restores it the same way).
                        _id = _initialId;
                    }

                    wake = true; // ExtINT pass-through may have just become possible
                    break;
                case MsrTscDeadline:
                    if ((_lvt[LvtTimer] & LvtTimerModeMask) == LvtTimerTscDeadline)
                    {
                        _tscDeadline = value;
                        StartTscDeadline();

                        // A deadline already passed fires now, before the instruction after WRMSR (as on hardware),
                        // not when the host timer thread gets to it.
                        wake |= ServiceTimer(_time.NowNanoseconds);
                    }

                    break; // ignored in other timer modes (§10.5.4.1)
                default:
                    return false;
            }
        }

        if (wake)
        {
            Wake();
        }

        return true;
    }

    /// <summary>The LINT0 pin (the PIC's INT in virtual-wire mode, or any device the machine wires to it).</summary>
    public void SetLint0(bool level)
    {
        bool wake;
        lock (_gate)
        {
            bool rising = level && !_lint0Level;
            _lint0Level = level;
            wake = level && LocalPinEvent(LvtLint0, rising);
        }

        if (wake)
        {
            Wake();
        }
    }

    /// <summary>The LINT1 pin (NMI on PCs).</summary>
    public void SetLint1(bool level)
    {
        bool wake;
        lock (_gate)
        {
            wake = level && LocalPinEvent(LvtLint1, rising: true);
        }

        if (wake)
        {
            Wake();
        }
    }

    /// <summary>Accepts a message addressed to this LAPIC (from the APIC bus).</summary>
    internal void Accept(in ApicMessage message)
    {
        bool wake = false;
        lock (_gate)
        {
            if ((_apicBase & BaseEnable) == 0)
            {
                return; // a globally disabled APIC ignores the bus
            }

            switch (message.Mode)
            {
                case ApicDeliveryMode.Fixed:
                case ApicDeliveryMode.LowestPriority:
                    wake = AcceptFixed(message.Vector, message.LevelTriggered);
                    break;
                case ApicDeliveryMode.Nmi:
                    _pendingNmis = Math.Min(_pendingNmis + 1, 2); // one in service plus one latched, as the CPU holds
                    wake = true;
                    break;
                case ApicDeliveryMode.Init:
                    if (message.LevelTriggered && !message.Assert)
                    {
                        break; // INIT level de-assert: only synchronises arbitration IDs (§10.6.1)
                    }

                    // INIT resets the APIC except its ID and IA32_APIC_BASE (§10.4.7.3).
                    ResetRegisters();
                    StopTimer();
                    _initPending = true;
                    _startupPending = false;
                    wake = true;
                    break;
                case ApicDeliveryMode.StartUp:
                    _startupPending = true;
                    _startupVector = message.Vector;
                    wake = true;
                    break;
                case ApicDeliveryMode.ExtInt:
                    _extIntMessage = true;
                    wake = true;
                    break;
                default:
                    break; // SMI: no SMM
            }
        }

        if (wake)
        {
            Wake();
        }
    }

    internal void ConnectPic(Pic8259Pair pic)
    {
        lock (_gate)
        {
            _pic = pic;
        }
    }

    public LocalApicState Save()
    {
        lock (_gate)
        {
            long now = _time.NowNanoseconds;
            ServiceTimer(now);
            return new LocalApicState(
                StateVersion, _id, _apicBase, _tpr, _ldr, _dfr, _svr, [.. _isr], [.. _tmr], [.. _irr], _esr, _esrPending,
                _icrLow, _icrHigh, [.. _lvt], _initialCount, _divide, _timerRunning, _timerRunning ? now - _timerStartNs : 0,
                _tscDeadline, _pendingNmis, _initPending, _startupPending, _startupVector);
        }
    }

    public void Restore(LocalApicState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Version != StateVersion || state.Isr.Count != 8 || state.Tmr.Count != 8 || state.Irr.Count != 8 || state.Lvt.Count != LvtCount)
        {
            throw new ArgumentException($"LAPIC state version {state.Version} is not supported or malformed (expected version {StateVersion})", nameof(state));
        }

        lock (_gate)
        {
            long now = _time.NowNanoseconds;
            _id = state.Id;
            _apicBase = state.ApicBase & ~(BaseReservedMask | BaseX2Apic);
            _tpr = state.Tpr & 0xFF;
            _ldr = state.Ldr & 0xFF00_0000;
            _dfr = state.Dfr | DfrReadAsOnes;
            _svr = state.Svr & SvrWritable;
            for (int i = 0; i < 8; i++)
            {
                _isr[i] = state.Isr[i];
                _tmr[i] = state.Tmr[i];
                _irr[i] = state.Irr[i];
            }

            _irrAny = HighestBit(_irr) >= 0;

            for (int i = 0; i < LvtCount; i++)
            {
                _lvt[i] = state.Lvt[i] & s_lvtWritable[i];
            }

            _esr = state.Esr;
            _esrPending = state.EsrPending;
            _icrLow = state.IcrLow & IcrLowWritable;
            _icrHigh = state.IcrHigh & 0xFF00_0000;
            _initialCount = state.InitialCount;
            _divide = state.DivideConfig & 0xB;
            _tscDeadline = state.TscDeadline;
            _pendingNmis = Math.Clamp(state.PendingNmis, 0, 2);
            _initPending = state.InitPending;
            _startupPending = state.StartupPending;
            _startupVector = state.StartupVector;
            StopTimer();
            if ((_lvt[LvtTimer] & LvtTimerModeMask) == LvtTimerTscDeadline)
            {
                StartTscDeadline();
            }
            else if (state.TimerRunning && _initialCount != 0)
            {
                _timerRunning = true;
                _timerStartNs = now - Math.Max(0, state.TimerElapsedNanoseconds);
                _timerDeadlineNs = _timerStartNs + TimerPeriodNs(); // an overdue deadline fires on the next look
                _timer.Arm(_timerDeadlineNs);
            }
        }
    }

    public void Dispose() => _timer.Dispose();

    private bool SoftwareEnabled => (_svr & SvrEnable) != 0;

    private void ResetRegisters()
    {
        // Power-up/INIT state (§10.4.7.1): LVTs masked, SVR = 0xFF (software disabled), DFR all ones.
        Array.Clear(_isr);
        Array.Clear(_tmr);
        Array.Clear(_irr);
        _irrAny = false;
        for (int i = 0; i < LvtCount; i++)
        {
            _lvt[i] = LvtMasked;
        }

        _tpr = 0;
        _ldr = 0;
        _dfr = 0xFFFF_FFFF;
        _svr = 0xFF;
        _esr = 0;
        _esrPending = 0;
        _icrLow = 0;
        _icrHigh = 0;
        _initialCount = 0;
        _divide = 0;
        _tscDeadline = 0;
        _extIntMessage = false;
    }

    private uint ReadRegister(int reg)
    {
        switch (reg)
        {
            case RegId:
                return (uint)_id << 24;
            case RegVersion:
                return VersionValue;
            case RegTpr:
                return _tpr;
            case RegApr:
                return 0;
            case RegPpr:
                return Ppr();
            case RegLdr:
                return _ldr;
            case RegDfr:
                return _dfr;
            case RegSvr:
                return _svr;
            case >= RegIsr and < RegTmr:
                return _isr[(reg - RegIsr) >> 4];
            case >= RegTmr and < RegIrr:
                return _tmr[(reg - RegTmr) >> 4];
            case >= RegIrr and < RegEsr:
                return _irr[(reg - RegIrr) >> 4];
            case RegEsr:
                return _esr;
            case RegLvtCmci:
                return _lvt[LvtCmci];
            case RegIcrLow:
                return _icrLow; // delivery status (bit 12) is always idle: IPIs are delivered synchronously
            case RegIcrHigh:
                return _icrHigh;
            case >= RegLvtTimer and <= RegLvtError:
                return _lvt[LvtTimer + ((reg - RegLvtTimer) >> 4)];
            case RegInitialCount:
                return _initialCount;
            case RegCurrentCount:
                return CurrentCount(_time.NowNanoseconds);
            case RegDivide:
                return _divide;
            default:
                return 0; // EOI, RRD and reserved slots read as 0
        }
    }

    private void WriteRegister(int reg, uint value)
    {
        byte eoiVector = 0;
        bool broadcastEoi = false;
        ApicMessage? ipi = null;
        bool wake = false;
        lock (_gate)
        {
            long now = _time.NowNanoseconds;
            switch (reg)
            {
                case RegId:
                    _id = (byte)(value >> 24);
                    break;
                case RegTpr:
                    _tpr = value & 0xFF;
                    wake = true; // lowering TPR can unblock a pending interrupt on another thread's view
                    break;
                case RegEoi:
                    broadcastEoi = Eoi(out eoiVector);
                    break;
                case RegLdr:
                    _ldr = value & 0xFF00_0000;
                    break;
                case RegDfr:
                    _dfr = value | DfrReadAsOnes;
                    break;
                case RegSvr:
                    _svr = value & SvrWritable;
                    if (!SoftwareEnabled)
                    {
                        for (int i = 0; i < LvtCount; i++)
                        {
                            _lvt[i] |= LvtMasked; // software disable masks every LVT (§10.4.7.2)
                        }
                    }

                    wake = true;
                    break;
                case RegEsr:
                    // A write latches the errors seen since the previous write (§10.5.3).
                    _esr = _esrPending;
                    _esrPending = 0;
                    break;
                case RegLvtCmci:
                    WriteLvt(LvtCmci, value, now);
                    break;
                case RegIcrLow:
                    _icrLow = value & IcrLowWritable;
                    ipi = BuildIpi();
                    break;
                case RegIcrHigh:
                    _icrHigh = value & 0xFF00_0000;
                    break;
                case >= RegLvtTimer and <= RegLvtError:
                    WriteLvt(LvtTimer + ((reg - RegLvtTimer) >> 4), value, now);
                    wake = true;
                    break;
                case RegInitialCount:
                    WriteInitialCount(value, now);
                    break;
                case RegDivide:
                    ServiceTimer(now);
                    RebaseTimerForDivide(value & 0xB, now);
                    break;
                case RegVersion:
                case RegApr:
                case RegPpr:
                case RegRrd:
                case >= RegIsr and < RegEsr:
                case RegCurrentCount:
                    break; // read-only
                default:
                    SignalError(EsrIllegalRegister);
                    break;
            }
        }

        // Calls that reach other devices happen without our lock (see the header).
        if (broadcastEoi)
        {
            _bus.BroadcastEoi(eoiVector);
        }

        if (ipi is { } message)
        {
            _bus.Deliver(message, this);
        }

        if (wake)
        {
            Wake();
        }
    }

    private void WriteLvt(int index, uint value, long now)
    {
        uint old = _lvt[index];
        uint v = value & s_lvtWritable[index];
        if (!SoftwareEnabled)
        {
            v |= LvtMasked;
        }

        if (index == LvtTimer && ((old ^ v) & LvtTimerModeMask) != 0)
        {
            // A count that ran out under the old mode fires under it.
            ServiceTimer(now);
            _lvt[index] = v;
            if (((old & LvtTimerModeMask) == LvtTimerTscDeadline) != ((v & LvtTimerModeMask) == LvtTimerTscDeadline))
            {
                // Entering or leaving TSC-deadline mode disarms the timer (§10.5.4.1): a deadline or a count from the
                // other mode does not carry over.
                StopTimer();
                _initialCount = 0;
                _tscDeadline = 0;
            }
            else if (_timerRunning)
            {
                // One-shot <-> periodic keeps TMICT and the count in progress (as KVM's local APIC does, which
                // kvm-unit-tests' apic test checks): only what happens at zero changes.
                _timerDeadlineNs = _timerStartNs + TimerPeriodNs();
                _timer.Arm(_timerDeadlineNs);
            }

            return;
        }

        _lvt[index] = v;
    }

    private void WriteInitialCount(uint value, long now)
    {
        ServiceTimer(now);
        if ((_lvt[LvtTimer] & LvtTimerModeMask) == LvtTimerTscDeadline)
        {
            return; // ignored in TSC-deadline mode
        }

        _initialCount = value;
        StopTimer();
        if (value != 0)
        {
            _timerRunning = true;
            _timerStartNs = now;
            _timerDeadlineNs = now + TimerPeriodNs();
            _timer.Arm(_timerDeadlineNs);
        }
    }

    private void RebaseTimerForDivide(uint divide, long now)
    {
        if (!_timerRunning || (_lvt[LvtTimer] & LvtTimerModeMask) == LvtTimerTscDeadline)
        {
            _divide = divide;
            return;
        }

        // Keep the current count; count the rest at the new rate.
        uint current = CurrentCount(now);
        _divide = divide;
        long period = TimerPeriodNs();
        long remaining = (long)current * DivideBy();
        _timerStartNs = now + remaining - period;
        _timerDeadlineNs = now + remaining;
        _timer.Arm(_timerDeadlineNs);
    }

    /// <summary>Divide configuration bits 3,1:0 (§10.5.4 Figure 10-10): 111 = 1, otherwise 2^(value+1).</summary>
    private long DivideBy()
    {
        uint v = (_divide & 3) | ((_divide >> 1) & 4);
        return v == 7 ? 1 : 2L << (int)v;
    }

    private long TimerPeriodNs()
    {
        long period = (long)_initialCount * DivideBy();
        return (_lvt[LvtTimer] & LvtTimerModeMask) == LvtTimerPeriodic ? Math.Max(period, MinPeriodNanoseconds) : period;
    }

    private uint CurrentCount(long now)
    {
        ServiceTimer(now);
        if (!_timerRunning || _initialCount == 0)
        {
            return 0;
        }

        long elapsedTicks = (now - _timerStartNs) / DivideBy();
        if ((_lvt[LvtTimer] & LvtTimerModeMask) == LvtTimerPeriodic)
        {
            long periodTicks = Math.Max(TimerPeriodNs() / DivideBy(), 1);
            return (uint)Math.Min(_initialCount, periodTicks - (elapsedTicks % periodTicks));
        }

        return elapsedTicks >= _initialCount ? 0 : (uint)(_initialCount - elapsedTicks);
    }

    private void StartTscDeadline()
    {
        StopTimer();
        if (_tscDeadline == 0)
        {
            return;
        }

        long freq = _time.TscFrequency;
        Int128 ns = (((Int128)_tscDeadline * NanosecondsPerSecond) + freq - 1) / freq;
        _timerRunning = true;
        _timerStartNs = _time.NowNanoseconds;
        _timerDeadlineNs = ns > long.MaxValue ? long.MaxValue : (long)ns;
        if (_timerDeadlineNs != long.MaxValue)
        {
            _timer.Arm(_timerDeadlineNs);
        }
    }

    private void StopTimer()
    {
        _timerRunning = false;
        _timer.Disarm();
    }

    /// <summary>Fires the timer if its deadline has passed; returns true when an interrupt became pending.</summary>
    private bool ServiceTimer(long now)
    {
        if (!_timerRunning || now < _timerDeadlineNs)
        {
            return false;
        }

        uint lvt = _lvt[LvtTimer];
        switch (lvt & LvtTimerModeMask)
        {
            case LvtTimerPeriodic:
                {
                    long period = TimerPeriodNs();

                    // Periods missed while the host was busy are coalesced into this one interrupt.
                    long periods = ((now - _timerStartNs) / period);
                    _timerStartNs += periods * period;
                    _timerDeadlineNs = _timerStartNs + period;
                    _timer.Arm(_timerDeadlineNs);
                    break;
                }

            case LvtTimerTscDeadline:
                _tscDeadline = 0; // the MSR reads 0 once the deadline has passed
                _timerRunning = false;
                break;
            default:
                _timerRunning = false;
                break;
        }

        return (lvt & LvtMasked) == 0 && AcceptFixed((byte)(lvt & LvtVectorMask), level: false);
    }

    private void OnTimer()
    {
        bool fired;
        lock (_gate)
        {
            long now = _time.NowNanoseconds;
            fired = ServiceTimer(now);
            if (_timerRunning && _timerDeadlineNs > now)
            {
                _timer.Arm(_timerDeadlineNs); // woke early (host timer granularity): try again
            }
        }

        if (fired)
        {
            Wake();
        }
    }

    /// <summary>Sets the vector in IRR (and TMR for level-triggered); returns true when the vCPU should look.</summary>
    private bool AcceptFixed(byte vector, bool level)
    {
        if (!SoftwareEnabled)
        {
            return false; // a software-disabled APIC drops fixed interrupts (§10.4.7.2)
        }

        if (vector < MinLegalVector)
        {
            SignalError(EsrReceiveIllegalVector);
            return true;
        }

        SetBit(_irr, vector);
        _irrAny = true;
        if (level)
        {
            SetBit(_tmr, vector);
        }
        else
        {
            ClearBit(_tmr, vector);
        }

        return true;
    }

    private void SignalError(uint bit)
    {
        _esrPending |= bit;
        uint lvt = _lvt[LvtError];
        if ((lvt & LvtMasked) == 0 && (lvt & LvtVectorMask) >= MinLegalVector)
        {
            SetBit(_irr, (int)(lvt & LvtVectorMask));
            _irrAny = true;
            ClearBit(_tmr, (int)(lvt & LvtVectorMask));
        }
    }

    /// <summary>A LINT pin event: delivers per its LVT entry; returns true when the vCPU should look.</summary>
    private bool LocalPinEvent(int lvtIndex, bool rising)
    {
        uint lvt = _lvt[lvtIndex];
        bool passThrough = (_apicBase & BaseEnable) == 0 || !SoftwareEnabled;
        if (passThrough)
        {
            // With the APIC disabled the pins behave as on a pre-APIC PC: LINT0 is the PIC's INTR, LINT1 is NMI.
            if (lvtIndex == LvtLint1 && rising)
            {
                _pendingNmis = Math.Min(_pendingNmis + 1, 2);
            }

            return lvtIndex == LvtLint0 || rising;
        }

        if ((lvt & LvtMasked) != 0)
        {
            return false;
        }

        switch ((ApicDeliveryMode)((lvt >> 8) & 7))
        {
            case ApicDeliveryMode.ExtInt:
                return true;
            case ApicDeliveryMode.Nmi:
                if (rising)
                {
                    _pendingNmis = Math.Min(_pendingNmis + 1, 2);
                }

                return rising;
            case ApicDeliveryMode.Fixed:
                return rising && AcceptFixed((byte)(lvt & LvtVectorMask), level: false);
            default:
                return false;
        }
    }

    private bool ExtIntAllowed()
    {
        if (_extIntMessage || (_apicBase & BaseEnable) == 0 || !SoftwareEnabled)
        {
            return true;
        }

        uint lint0 = _lvt[LvtLint0];
        return (lint0 & LvtMasked) == 0 && (ApicDeliveryMode)((lint0 >> 8) & 7) == ApicDeliveryMode.ExtInt;
    }

    private ApicMessage? BuildIpi()
    {
        var mode = (ApicDeliveryMode)((_icrLow >> 8) & 7);
        var shorthand = (ApicShorthand)((_icrLow >> 18) & 3);
        byte vector = (byte)_icrLow;
        if (mode is ApicDeliveryMode.Fixed or ApicDeliveryMode.LowestPriority && vector < MinLegalVector)
        {
            SignalError(EsrSendIllegalVector);
            return null;
        }

        return new ApicMessage(
            vector,
            mode,
            (byte)(_icrHigh >> 24),
            (_icrLow & IcrDestinationLogical) != 0,
            LevelTriggered: (_icrLow & IcrTriggerLevel) != 0,
            Assert: (_icrLow & IcrLevelAssert) != 0,
            Shorthand: shorthand);
    }

    /// <summary>Retires the highest in-service vector; true when it was level-triggered (EOI must reach the IOAPIC).</summary>
    private bool Eoi(out byte vector)
    {
        int v = HighestBit(_isr);
        vector = (byte)Math.Max(v, 0);
        if (v < 0)
        {
            return false;
        }

        ClearBit(_isr, v);

        // TMR keeps the trigger mode of the last accepted interrupt on this vector: only the next acceptance changes
        // it (SDM Vol. 3A §11.8.4), so it is read here and not cleared.
        return TestBit(_tmr, v);
    }

    /// <summary>PPR (§10.8.3.1): TPR if its class is at least the highest in-service class, else that class.</summary>
    private uint Ppr()
    {
        int isrv = HighestBit(_isr);
        uint isrClass = isrv < 0 ? 0 : (uint)isrv & 0xF0;
        return (_tpr & 0xF0) >= isrClass ? _tpr & 0xFF : isrClass;
    }

    /// <summary>The highest IRR vector whose priority class beats PPR (§10.8.3.1), or -1.</summary>
    private int DeliverableFixedVector()
    {
        if ((_apicBase & BaseEnable) == 0)
        {
            return -1;
        }

        int v = HighestBit(_irr);
        return v >= 0 && (uint)(v & 0xF0) > (Ppr() & 0xF0) ? v : -1;
    }

    private void Wake()
    {
        IVcpuWakeup? w;
        lock (_gate)
        {
            w = _wakeup;
        }

        w?.Wake();
    }

    private static int HighestBit(uint[] bits)
    {
        for (int i = bits.Length - 1; i >= 0; i--)
        {
            if (bits[i] != 0)
            {
                return (i << 5) + 31 - System.Numerics.BitOperations.LeadingZeroCount(bits[i]);
            }
        }

        return -1;
    }

    private static void SetBit(uint[] bits, int v) => bits[v >> 5] |= 1u << (v & 31);

    private static void ClearBit(uint[] bits, int v) => bits[v >> 5] &= ~(1u << (v & 31));

    private static bool TestBit(uint[] bits, int v) => (bits[v >> 5] & (1u << (v & 31))) != 0;
}
