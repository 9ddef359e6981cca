// A running VM: guest memory, the two buses, the engine and one runner thread per vCPU, with the lifecycle
// (start, pause, resume, stop) and the stop conditions (power-off, reset, triple fault, debug-exit, every vCPU
// halted with interrupts disabled, engine error, user quit). Built by MachineBuilder from a MachineConfig.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;
using Ringvisor.Core.Vm;

namespace Ringvisor.Machine;

public sealed class VirtualMachine : IVmControl, IDisposable
{
    /// <summary>How often halted vCPUs are polled (KVM handles HLT in the kernel and never exits for it).</summary>
    private static readonly TimeSpan s_haltPollInterval = TimeSpan.FromMilliseconds(250);

    private readonly object _gate = new();
    private readonly List<VcpuRunner> _runners = [];
    private readonly List<IDisposable> _owned = [];
    private readonly ManualResetEventSlim _stopped = new(false);
    private Timer? _haltPoll;
    private VmStopResult? _stop;
    private bool _started;
    private bool _disposed;

    public VirtualMachine(GuestMemory memory, IoBus pio, IoBus mmio)
    {
        Memory = memory;
        Pio = pio;
        Mmio = mmio;
    }

    public GuestMemory Memory { get; }

    public IoBus Pio { get; }

    public IoBus Mmio { get; }

    public ICpuEngine? Engine { get; private set; }

    public IReadOnlyList<IVcpu> Vcpus => _runners.ConvertAll(r => r.Vcpu);

    /// <summary>Raised once, on the thread that requested the stop, when the VM starts stopping.</summary>
    public event Action<VmStopResult>? Stopping;

    /// <summary>The stop result once the VM has been asked to stop; null while it runs.</summary>
    public VmStopResult? StopResult
    {
        get
        {
            lock (_gate)
            {
                return _stop;
            }
        }
    }

    /// <summary>Attaches the engine and creates its vCPUs; vCPU 0 gets <paramref name="bootState"/>.</summary>
    public void AttachEngine(ICpuEngine engine, int vcpuCount, CpuState bootState)
    {
        if (Engine is not null)
        {
            throw new InvalidOperationException("the VM already has an engine");
        }

        Engine = engine;
        for (int i = 0; i < vcpuCount; i++)
        {
            IVcpu vcpu = engine.CreateVcpu(i);
            if (i == 0)
            {
                vcpu.SetState(bootState);
            }

            _runners.Add(new VcpuRunner(vcpu, this));
        }
    }

    /// <summary>Something the VM disposes when it is disposed (devices with threads or files).</summary>
    public void Own(IDisposable resource) => _owned.Add(resource);

    public void Start()
    {
        lock (_gate)
        {
            if (_started)
            {
                throw new InvalidOperationException("the VM was already started");
            }

            if (Engine is null)
            {
                throw new InvalidOperationException("the VM has no engine");
            }

            _started = true;
        }

        foreach (var r in _runners)
        {
            r.Start();
        }

        _haltPoll = new Timer(_ => PollHalted(), null, s_haltPollInterval, s_haltPollInterval);
    }

    /// <summary>Pauses every vCPU and waits until none runs guest code.</summary>
    public bool Pause(TimeSpan timeout)
    {
        foreach (var r in _runners)
        {
            r.Request(VcpuRunState.Paused);
        }

        return _runners.TrueForAll(r => r.WaitFor(VcpuRunState.Paused, timeout));
    }

    public void Resume()
    {
        foreach (var r in _runners)
        {
            r.Request(VcpuRunState.Running);
        }
    }

    /// <summary>Stops the VM (idempotent): the first stop reason wins; vCPUs are kicked out of guest code.</summary>
    public void RequestStop(VmStopReason reason, int exitStatus, string? detail = null)
    {
        VmStopResult result;
        lock (_gate)
        {
            if (_stop is not null)
            {
                return;
            }

            _stop = result = new VmStopResult(reason, exitStatus, detail);
        }

        Stopping?.Invoke(result);
        foreach (var r in _runners)
        {
            r.Request(VcpuRunState.Stopped);
        }

        _stopped.Set();
    }

    /// <summary>Stops with <see cref="VmStopReason.UserQuit"/>.</summary>
    public void Quit() => RequestStop(VmStopReason.UserQuit, 0, "quit requested");

    /// <summary>Blocks until the VM is asked to stop, then waits (bounded) for the vCPU threads to leave guest code.</summary>
    public VmStopResult WaitForStop(TimeSpan? timeout = null)
    {
        if (!_stopped.Wait(timeout ?? Timeout.InfiniteTimeSpan))
        {
            throw new TimeoutException("the VM did not stop in time");
        }

        JoinVcpus(TimeSpan.FromSeconds(5));
        return StopResult!;
    }

    /// <summary>Called by a runner when its vCPU halted with interrupts disabled.</summary>
    internal void OnVcpuHaltedForever()
    {
        if (_runners.TrueForAll(r => r.HaltedForever))
        {
            RequestStop(VmStopReason.HaltedForever, 0, "all vCPUs halted with interrupts disabled");
        }
    }

    private void PollHalted()
    {
        if (StopResult is not null)
        {
            return;
        }

        // Under kvm, HLT with the in-kernel LAPIC sleeps in the kernel; a kick makes the engine look at the
        // halted state and report VcpuExitReason.Halted when interrupts are disabled.
        foreach (var r in _runners)
        {
            r.Kick();
        }
    }

    private void JoinVcpus(TimeSpan timeout)
    {
        if (!_started)
        {
            return;
        }

        var deadline = DateTime.UtcNow + timeout;
        foreach (var r in _runners)
        {
            var left = deadline - DateTime.UtcNow;
            if (left > TimeSpan.Zero && !r.Join(left))
            {
                r.Kick();
            }
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        RequestStop(VmStopReason.UserQuit, 0, "VM disposed");
        _haltPoll?.Dispose();
        JoinVcpus(TimeSpan.FromSeconds(5));
        // A VM that never started has no vCPU thread that could still touch guest memory.
        bool allStopped = !_started || _runners.TrueForAll(r => r.ActualState == VcpuRunState.Stopped);

        // Devices first: their threads (virtio workers, network backends, timers) may still raise interrupts that
        // wake vCPUs, so the vCPUs go after every device thread has ended.
        foreach (var d in Enumerable.Reverse(_owned))
        {
            d.Dispose();
        }

        foreach (var r in _runners)
        {
            if (allStopped)
            {
                r.Vcpu.Dispose();
            }
        }

        if (allStopped)
        {
            Engine?.Dispose();

            // Guest memory is unmapped only when no vCPU thread can touch it any more.
            Memory.Dispose();
        }

        _stopped.Dispose();
    }
}
