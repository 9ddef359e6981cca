// The ports the harness's guest code writes to end a run (normal end, exception stubs, dump stub): records which one
// and kicks the vCPU so Run returns right after the OUT. Also the IVmControl both engines want.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Vm;

namespace Ringvisor.Emulator.Tests.Differential;

internal sealed class DiffExitPort : IBusDevice, IVmControl
{
    private int _port = -1;

    public IVcpu? Vcpu { get; set; }

    /// <summary>The port written since the last <see cref="Reset"/>, or -1.</summary>
    public int Port => Volatile.Read(ref _port);

    public string? StopDetail { get; private set; }

    public void Reset()
    {
        Volatile.Write(ref _port, -1);
        StopDetail = null;
    }

    public void Read(ulong offset, Span<byte> data) => data.Fill(0xFF);

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        Volatile.Write(ref _port, DiffLayout.FirstPort + (int)offset);
        Vcpu?.Kick();
    }

    public void RequestStop(VmStopReason reason, int exitStatus, string? detail = null)
    {
        StopDetail = $"{reason} {exitStatus} {detail}";
        Vcpu?.Kick();
    }
}
