// Reset Control Register at I/O port 0xCF9 (Intel PIIX/ICH "RST_CNT"): writing SYS_RST (bit 1) with RST_CPU
// (bit 2) resets the machine. Linux's reboot=pci and many firmwares use it.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Vm;

namespace Ringvisor.Devices.Legacy;

public sealed class ResetControl(IVmControl control) : IBusDevice
{
    public const ushort DefaultPort = 0xCF9;

    private const byte SystemReset = 0b0000_0010; // RST_CNT bit 1: SYS_RST (full reset when RST_CPU goes 0 -> 1)
    private const byte ResetCpu = 0b0000_0100; // RST_CNT bit 2: RST_CPU

    private byte _value;

    public void Read(ulong offset, Span<byte> data)
    {
        data.Clear();
        if (data.Length > 0)
        {
            data[0] = Volatile.Read(ref _value);
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (data.Length == 0)
        {
            return;
        }

        byte v = data[0];
        byte old = Interlocked.Exchange(ref _value, (byte)(v & SystemReset));
        if ((v & ResetCpu) != 0 && (old & ResetCpu) == 0)
        {
            control.RequestStop(VmStopReason.Reset, 0, "reset through port 0xCF9");
        }
    }
}
