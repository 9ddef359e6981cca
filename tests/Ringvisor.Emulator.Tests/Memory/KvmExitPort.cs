// For the KVM differential tests: an I/O port the guest writes a status byte to, which ends the run, and the
// IVmControl the engine wants (stop requests also end the run).
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Vm;

namespace Ringvisor.Emulator.Tests.Memory;

internal sealed class KvmExitPort : IBusDevice, IVmControl
{
    public const byte Port = 0xF4;

    private int _status = -1;

    public IVcpu? Vcpu { get; set; }

    /// <summary>The byte the guest wrote, or -1 while it has not.</summary>
    public int Status => Volatile.Read(ref _status);

    public string? StopDetail { get; private set; }

    public void Read(ulong offset, Span<byte> data) => data.Fill(0xFF);

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        Interlocked.CompareExchange(ref _status, data[0], -1);
        Vcpu?.Kick();
    }

    public void RequestStop(VmStopReason reason, int exitStatus, string? detail = null)
    {
        StopDetail = $"{reason} {exitStatus} {detail}";
        Interlocked.CompareExchange(ref _status, 0x100, -1);
        Vcpu?.Kick();
    }
}
