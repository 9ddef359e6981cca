// Runs a vCPU on its own thread the way a machine would: Run in a loop until the VM is asked to stop or Run reports
// something other than a kick. Optionally kicks it periodically, which is how a machine notices a vCPU halted with
// interrupts disabled (HLT never exits with the in-kernel LAPIC).
using System.Diagnostics;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Vm;

namespace Ringvisor.Kvm.Tests.Support;

internal sealed class VcpuDriver
{
    /// <summary>A hang guard, not a timing assertion: tests fail instead of blocking the test run forever.</summary>
    public static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    private readonly IVcpu _vcpu;
    private readonly TestVmControl _control;
    private readonly Thread _thread;
    private readonly Func<bool> _haltIsFinal;
    private VcpuExit _last;
    private Exception? _error;

    /// <param name="haltIsFinal">Whether a Halted exit ends the loop now (default: always).</param>
    public VcpuDriver(IVcpu vcpu, TestVmControl control, Func<bool>? haltIsFinal = null)
    {
        _vcpu = vcpu;
        _control = control;
        _haltIsFinal = haltIsFinal ?? (() => true);
        _thread = new Thread(Loop) { IsBackground = true, Name = $"test-vcpu{vcpu.Index}" };
        _thread.Start();
    }

    public int KickedExits { get; private set; }

    /// <summary>Waits for the loop to end, kicking every <paramref name="kickPeriod"/> when given.</summary>
    public VcpuExit Finish(TimeSpan? kickPeriod = null)
    {
        var sw = Stopwatch.StartNew();
        var period = kickPeriod ?? TimeSpan.FromMilliseconds(50);
        while (!_thread.Join(period))
        {
            if (sw.Elapsed > HangGuard)
            {
                _control.RequestStop(VmStopReason.UserQuit, 1, "test hang guard");
                _vcpu.Kick();
                _thread.Join();
                throw new TimeoutException($"vCPU {_vcpu.Index} did not finish within {HangGuard}");
            }

            if (kickPeriod is not null)
            {
                _vcpu.Kick();
            }
        }

        if (_error is not null)
        {
            throw new InvalidOperationException($"vCPU {_vcpu.Index} thread failed", _error);
        }

        return _last;
    }

    public bool Join(TimeSpan timeout) => _thread.Join(timeout);

    private void Loop()
    {
        try
        {
            while (true)
            {
                _last = _vcpu.Run();
                if (_control.StopRequested)
                {
                    return;
                }

                if (_last.Reason == VcpuExitReason.Kicked || (_last.Reason == VcpuExitReason.Halted && !_haltIsFinal()))
                {
                    KickedExits++;
                    continue;
                }

                return;
            }
        }
        catch (Exception e)
        {
            _error = e;
        }
    }
}
