// The guest's "finished" port: kicks the vCPU so Run returns to the benchmark loop.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;

namespace Ringvisor.Bench.Pio;

internal sealed class DonePortDevice : IBusDevice
{
    public IVcpu? Vcpu { get; set; }

    public bool Done { get; private set; }

    public void Read(ulong offset, Span<byte> data) => data.Clear();

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        Done = true;
        Vcpu?.Kick();
    }
}
