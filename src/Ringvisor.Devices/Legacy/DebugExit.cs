// QEMU-compatible isa-debug-exit: a write of value v to the port stops the VM with exit status (v << 1) | 1, so a
// test guest can report pass/fail through the VMM's exit code (QEMU hw/misc/debugexit.c behaviour).
//
// Wiring: pio.Register(DebugExit.DefaultPort, DebugExit.WindowLength, new DebugExit(control), "isa-debug-exit").
// Accepts 1-, 2- and 4-byte writes anywhere in the window; reads return 0 (the port has no readable state).
using Ringvisor.Core.Bus;
using Ringvisor.Core.Vm;

namespace Ringvisor.Devices.Legacy;

public sealed class DebugExit(IVmControl control) : IBusDevice
{
    /// <summary>The port QEMU users conventionally pass as iobase=0xf4.</summary>
    public const ushort DefaultPort = 0xF4;

    /// <summary>iosize=0x04: the window covers 0xF4..0xF7 so a 32-bit OUT lands in it.</summary>
    public const int WindowLength = 4;

    public void Read(ulong offset, Span<byte> data) => data.Clear();

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        uint value = (uint)PortValue.Get(data[..Math.Min(data.Length, 4)]);
        control.RequestStop(VmStopReason.DebugExit, ExitStatusFor(value));
    }

    /// <summary>The process exit status for a written value: (v &lt;&lt; 1) | 1, truncated to int as QEMU does.</summary>
    public static int ExitStatusFor(uint value) => (int)((value << 1) | 1);
}
