// Asynchronous events at instruction boundaries (SDM Vol. 3A §6.7-6.9): external interrupts from the local APIC when
// RFLAGS.IF = 1 and no interrupt shadow, NMI (blocked until the next IRET), INIT (reset to wait-for-SIPI) and SIPI
// (real mode at vector << 12, §8.4.4), and HLT's halted state.
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Exceptions;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    // Set from other threads (wakeups, kicks) and by instructions that may open an interrupt window.
    private volatile bool _attention = true;
    private bool _stopBatch;
    private bool _halted;
    private bool _interruptShadow;
    private bool _setShadow;
    private bool _nmiPending;

    // Set by an instruction whose single-step trap depends on TF after it (SYSCALL with TF in FMASK).
    private bool _suppressSingleStep;

    // A HLT with TF set: its single-step trap waits for the end of the halt.
    private bool _singleStepOnWake;
    private volatile bool _waitForSipi;

    internal bool Halted => _halted;

    internal bool WaitingForSipi => _waitForSipi;

    /// <summary>Requests that the run loop look at pending events before the next instruction.</summary>
    internal void RequestAttention() => _attention = true;

    internal void StopBatch() => _stopBatch = true;

    /// <summary>
    /// MOV SS / POP SS: interrupts wait one instruction, and the single-step trap after this instruction is not taken
    /// (SDM Vol. 3A §6.8.3: debug exceptions are inhibited across the SS load; the next instruction's trap, with TF
    /// still set, reports it).
    /// </summary>
    private void SetMovSsShadow()
    {
        _setShadow = true;
        if ((_flags & FlagTf) != 0)
        {
            _suppressSingleStep = true;
        }
    }

    /// <summary>Puts an application processor into wait-for-SIPI (its state after power-on or INIT).</summary>
    internal void EnterWaitForSipi()
    {
        _waitForSipi = true;
        _halted = false;
    }

    /// <summary>True when something could wake a halted vCPU now.</summary>
    internal bool HasWakeEvent()
    {
        if (_nmiPending || (_apic is not null && _apic.HasInterrupt && IF))
        {
            return true;
        }

        return false;
    }

    /// <summary>
    /// Looks at pending events; delivers at most one. Returns true when the batch must stop (kick, shutdown, state
    /// change the run loop must see).
    /// </summary>
    private bool ServiceEvents()
    {
        _attention = false;

        // TLB shootdowns and code-page marks requested by other threads (they raise attention when they post one).
        _mmu.Poll();
        if (_kickRequested)
        {
            _stopBatch = true;
            return true;
        }

        var apic = _apic;
        if (apic is null)
        {
            return false;
        }

        if (apic.TakeInit())
        {
            ResetForInit();
            return true;
        }

        if (_waitForSipi)
        {
            if (apic.TryTakeStartup(out byte vector))
            {
                StartFromSipi(vector);
                return false;
            }

            return true;
        }

        if (apic.TakeNmi())
        {
            _nmiPending = true;
        }

        if (_nmiPending && !_nmiBlocked && _interruptShadow)
        {
            // Held for one instruction by the STI/MOV SS shadow: look again after it.
            _attention = true;
        }
        else if (_nmiPending && !_nmiBlocked)
        {
            if (TakeSingleStepAfterHalt())
            {
                return _shutdown;
            }

            _nmiPending = false;
            _nmiBlocked = true;
            _halted = false;
            DeliverException(ExceptionVector.Nmi, false, 0, ExceptionSource.Nmi);
            _attention = true;
            return _shutdown;
        }

        if (apic.HasInterrupt)
        {
            if (!IF)
            {
                // Stays pending: the instruction that sets IF raises attention again.
                return false;
            }

            if (_interruptShadow)
            {
                _attention = true;
                return false;
            }

            if (TakeSingleStepAfterHalt())
            {
                return _shutdown;
            }

            int v = apic.AcknowledgeInterrupt();
            if (v >= 0)
            {
                _halted = false;
                DeliverException(v, false, 0, ExceptionSource.External);
                // Another interrupt may be pending behind this one.
                _attention = true;
                return _shutdown;
            }
        }

        return false;
    }

    /// <summary>
    /// A HLT executed with TF set reports its single-step #DB when an event ends the halt: the trap (priority 4) goes
    /// before the NMI or interrupt (SDM Vol. 3A Table 6-2), which stays pending behind it.
    /// </summary>
    private bool TakeSingleStepAfterHalt()
    {
        if (!_singleStepOnWake)
        {
            return false;
        }

        _singleStepOnWake = false;
        _halted = false;
        Dr[6] |= 1 << 14;
        DeliverException(ExceptionVector.Debug, false, 0, ExceptionSource.Fault);
        _attention = true;
        return true;
    }

    private void ResetForInit()
    {
        // INIT resets the processor except the APIC state, MTRRs/PAT (SDM Vol. 3A Table 9-1) and enters wait-for-SIPI.
        var s = new CpuState();
        s.System.ApicBase = 0;
        ulong apicBase = ReadApicBase();
        SetState(s);
        _apicBaseFallback = apicBase;
        _shutdown = false;
        _nmiPending = false;
        _nmiBlocked = false;
        _waitForSipi = true;
        _stopBatch = true;
    }

    private void StartFromSipi(byte vector)
    {
        _waitForSipi = false;
        _halted = false;
        Seg[SegCs] = SegmentRegister.RealMode((ushort)(vector << 8), code: true);
        Rip = 0;
        UpdateMode();
        _stopBatch = true;
    }

    private volatile bool _kickRequested;

    internal void SetKick(bool value)
    {
        _kickRequested = value;
        if (value)
        {
            _attention = true;
        }
    }

    internal bool KickRequested => _kickRequested;

    /// <summary>An event other than a maskable interrupt may be pending (NMI, INIT, SIPI): the loop must look.</summary>
    internal bool HasAsyncEvent() => _attention;
}
