// One bt vCPU: the interpreter plus the run-loop state machine around it (batches, kicks, HLT parking,
// wait-for-SIPI). Usable without the machine: new BtVcpu(new CpuHost(memory, pio, mmio), 0).
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Interrupts;
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator;

public sealed class BtVcpu : IVcpu, IVcpuWakeup
{
    // A parked vCPU re-checks its state at least this often even without a wakeup (defensive; wakeups are events).
    private const int ParkTimeoutMs = 100;

    private readonly Cpu _cpu;
    private readonly CpuHost _host;
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private StreamWriter? _trace;
    private bool _haltReported;

    public BtVcpu(CpuHost host, int index)
    {
        ArgumentNullException.ThrowIfNull(host);
        _host = host;
        Index = index;
        _cpu = new Cpu(host, index);
        if (host.LocalApics is { } apics && index < apics.Count)
        {
            apics[index].AttachWakeup(this);
            if (index > 0)
            {
                // Application processors start in wait-for-SIPI (SDM Vol. 3A §8.4.1).
                _cpu.EnterWaitForSipi();
            }
        }

        if (index == 0 && host.Options.TracePath is { } path)
        {
            _trace = new StreamWriter(path, append: false) { AutoFlush = false };
            _cpu.SetTrace(_trace);
        }
    }

    public int Index { get; }

    /// <summary>The interpreter (for tests and diagnostics).</summary>
    internal Cpu Cpu => _cpu;

    public long InstructionsExecuted => _cpu.InstructionsExecuted;

    public void SetState(CpuState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        _cpu.SetState(state);
        _haltReported = false;
    }

    public CpuState GetState() => _cpu.GetState();

    /// <summary>Drops cached decoded instructions for [gpa, gpa+length) on every vCPU (DMA or loader writes).</summary>
    public void InvalidateCode(ulong gpa, ulong length) => _host.MemorySystem.InvalidateRange(gpa, length);

    public VcpuExit Run()
    {
        try
        {
            return RunLoop();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A host exception here is an interpreter bug; report it instead of crashing the VMM.
            var s = _cpu.GetState();
            return new VcpuExit(VcpuExitReason.Error, $"bt engine internal error at RIP {s.Registers.Rip:x}: {e}");
        }
        finally
        {
            _trace?.Flush();
        }
    }

    private VcpuExit RunLoop()
    {
        int batch = Math.Max(1, _host.Options.BatchSize);
        while (true)
        {
            if (ConsumeKick())
            {
                return new VcpuExit(VcpuExitReason.Kicked);
            }

            if (_cpu.IsShutdown)
            {
                return new VcpuExit(VcpuExitReason.Shutdown, "triple fault");
            }

            if (_cpu.PoweredOff)
            {
                return new VcpuExit(VcpuExitReason.PowerOff, null, _cpu.ExitStatus);
            }

            if (_cpu.WaitingForSipi)
            {
                _cpu.RequestAttention();
                _cpu.ExecuteBatch(1);
                if (_cpu.WaitingForSipi)
                {
                    _ = _wake.Wait(ParkTimeoutMs);
                }

                continue;
            }

            if (_cpu.Halted)
            {
                if (!_cpu.HasWakeEvent())
                {
                    if (!_cpu.IF && !_haltReported)
                    {
                        // Nothing but NMI/INIT can wake this vCPU: let the machine decide (it stops the VM when
                        // every vCPU is in this state).
                        _haltReported = true;
                        return new VcpuExit(VcpuExitReason.Halted);
                    }

                    if (_host.Options.CollectStats)
                    {
                        _host.Stats.Halt();
                    }

                    bool woken = _wake.Wait(ParkTimeoutMs);
                    _ = woken;
                    _cpu.RequestAttention();
                    if (!_cpu.HasWakeEvent() && !_cpu.HasAsyncEvent())
                    {
                        continue;
                    }
                }

                _cpu.RequestAttention();
            }

            _haltReported = false;
            _cpu.ExecuteBatch(batch);
        }
    }

    private bool ConsumeKick()
    {
        if (_cpu.KickRequested)
        {
            _cpu.SetKick(false);
            return true;
        }

        return false;
    }

    public void Kick()
    {
        _cpu.SetKick(true);
        _wake.Release();
    }

    public void Wake()
    {
        _cpu.RequestAttention();
        _wake.Release();
    }

    public void Dispose()
    {
        _trace?.Dispose();
        _trace = null;
        _cpu.Dispose();

        // _wake is deliberately not disposed: device threads (timers, virtio workers, network backends) may still
        // call Wake or Kick while the machine tears down, and a SemaphoreSlim whose wait handle was never
        // requested holds no unmanaged resource.
    }
}
