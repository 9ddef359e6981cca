// One host thread per vCPU: a KVM_RUN-style loop over IVcpu.Run with pause/resume/stop commands delivered by
// kicking the vCPU out of guest mode. No lock is held while guest code runs.
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Vm;

namespace Ringvisor.Machine;

internal sealed class VcpuRunner
{
    private readonly IVcpu _vcpu;
    private readonly VirtualMachine _vm;
    private readonly object _gate = new();
    private readonly Thread _thread;
    private VcpuRunState _requested = VcpuRunState.Running;
    private VcpuRunState _actual = VcpuRunState.Paused;
    private volatile bool _haltedForever;

    public VcpuRunner(IVcpu vcpu, VirtualMachine vm)
    {
        _vcpu = vcpu;
        _vm = vm;
        _thread = new Thread(Loop) { Name = $"vcpu{vcpu.Index}", IsBackground = true };
    }

    public IVcpu Vcpu => _vcpu;

    /// <summary>True while the vCPU last reported HLT with interrupts disabled.</summary>
    public bool HaltedForever => _haltedForever;

    public VcpuRunState ActualState
    {
        get
        {
            lock (_gate)
            {
                return _actual;
            }
        }
    }

    public void Start() => _thread.Start();

    public void Request(VcpuRunState state)
    {
        lock (_gate)
        {
            if (_requested == VcpuRunState.Stopped)
            {
                return;
            }

            _requested = state;
            Monitor.PulseAll(_gate);
        }

        _vcpu.Kick();
    }

    /// <summary>Waits until the thread has reached <paramref name="state"/> (or stopped).</summary>
    public bool WaitFor(VcpuRunState state, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_gate)
        {
            while (_actual != state && _actual != VcpuRunState.Stopped)
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                {
                    return false;
                }

                Monitor.Wait(_gate, left);
            }

            return _actual == state || state == VcpuRunState.Stopped;
        }
    }

    public bool Join(TimeSpan timeout) => _thread.Join(timeout);

    public void Kick() => _vcpu.Kick();

    private void Loop()
    {
        try
        {
            while (true)
            {
                lock (_gate)
                {
                    while (_requested == VcpuRunState.Paused)
                    {
                        SetActual(VcpuRunState.Paused);
                        Monitor.Wait(_gate);
                    }

                    if (_requested == VcpuRunState.Stopped)
                    {
                        break;
                    }

                    SetActual(VcpuRunState.Running);
                }

                VcpuExit exit = _vcpu.Run();
                if (!Handle(exit))
                {
                    break;
                }
            }
        }
        catch (Exception e)
        {
            // A host exception here is a Ringvisor bug, but it must end the VM cleanly, not the process.
            _vm.RequestStop(VmStopReason.EngineError, VmStopResult.DefaultExitStatus(VmStopReason.EngineError),
                $"vCPU {_vcpu.Index}: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            lock (_gate)
            {
                SetActual(VcpuRunState.Stopped);
            }
        }
    }

    private void SetActual(VcpuRunState s)
    {
        _actual = s;
        Monitor.PulseAll(_gate);
    }

    /// <returns>False when the thread should end.</returns>
    private bool Handle(VcpuExit exit)
    {
        if (exit.Reason != VcpuExitReason.Halted)
        {
            _haltedForever = false;
        }

        switch (exit.Reason)
        {
            case VcpuExitReason.Kicked:
                return true;
            case VcpuExitReason.Halted:
                _haltedForever = true;
                _vm.OnVcpuHaltedForever();
                return true;
            case VcpuExitReason.Shutdown:
                _vm.RequestStop(VmStopReason.TripleFault, VmStopResult.DefaultExitStatus(VmStopReason.TripleFault),
                    $"vCPU {_vcpu.Index}: triple fault (shutdown)" + (exit.Detail is null ? "" : $": {exit.Detail}"));
                return false;
            case VcpuExitReason.Reset:
                _vm.RequestStop(VmStopReason.Reset, 0, exit.Detail);
                return false;
            case VcpuExitReason.PowerOff:
                _vm.RequestStop(VmStopReason.PowerOff, exit.Status, exit.Detail);
                return false;
            case VcpuExitReason.Error:
            default:
                _vm.RequestStop(VmStopReason.EngineError, VmStopResult.DefaultExitStatus(VmStopReason.EngineError),
                    $"vCPU {_vcpu.Index}: {exit.Detail ?? exit.Reason.ToString()}");
                return false;
        }
    }
}
