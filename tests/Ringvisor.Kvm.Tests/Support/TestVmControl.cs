// IVmControl for tests: records the first stop request and kicks the attached vCPUs so their Run returns.
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Vm;

namespace Ringvisor.Kvm.Tests.Support;

internal sealed class TestVmControl : IVmControl
{
    private readonly object _gate = new();
    private readonly List<IVcpu> _vcpus = [];

    public VmStopReason Reason { get; private set; }

    public int ExitStatus { get; private set; }

    public string? Detail { get; private set; }

    public bool StopRequested
    {
        get
        {
            lock (_gate)
            {
                return Reason != VmStopReason.None;
            }
        }
    }

    public void Attach(IVcpu vcpu)
    {
        lock (_gate)
        {
            _vcpus.Add(vcpu);
        }
    }

    public void RequestStop(VmStopReason reason, int exitStatus, string? detail = null)
    {
        IVcpu[] toKick;
        lock (_gate)
        {
            if (Reason != VmStopReason.None)
            {
                return;
            }

            Reason = reason;
            ExitStatus = exitStatus;
            Detail = detail;
            toKick = [.. _vcpus];
        }

        foreach (var v in toKick)
        {
            v.Kick();
        }
    }
}
