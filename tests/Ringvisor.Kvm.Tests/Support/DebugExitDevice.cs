// A test stand-in for isa-debug-exit: a write of v stops the VM with status (v << 1) | 1.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Vm;

namespace Ringvisor.Kvm.Tests.Support;

internal sealed class DebugExitDevice(TestVmControl control) : IBusDevice
{
    public const ushort Port = 0xF4;

    public void Read(ulong offset, Span<byte> data) => data.Fill(0xFF);

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        int v = 0;
        for (int i = data.Length - 1; i >= 0; i--)
        {
            v = (v << 8) | data[i];
        }

        control.RequestStop(VmStopReason.DebugExit, (v << 1) | 1);
    }
}
