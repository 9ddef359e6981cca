// QEMU's "pc-testdev" ISA test device, which kvm-unit-tests expects next to isa-debug-exit (QEMU hw/misc/pc-testdev.c,
// used by kvm-unit-tests lib/x86/apic.c set_irq_line and x86/emulator.c):
//   port 0xE0, 4 bytes    a scratch register: OUT stores the written bytes, IN reads them back (string I/O tests);
//   port 0xE4, 4 bytes    "flush page": the guest names a physical page whose host mapping QEMU drops so that the
//                         next access faults into the hypervisor; nothing to drop here, so writes are accepted and
//                         ignored;
//   port 0x2000, 24 bytes one byte per ISA IRQ line: writing v sets line n to level (v != 0);
//   MMIO 0xFF000000, 64 KiB RAM-like scratch memory that is MMIO to the CPU (emulated-MMIO instruction tests).
//
// Wiring: pio.Register(PcTestDevice.IoPortBase, PcTestDevice.IoPortLength, dev.IoPort, ...), the same for FlushPage
// and IrqLines, mmio.Register(PcTestDevice.IoMemBase, PcTestDevice.IoMemLength, dev.IoMem, ...).
using Ringvisor.Core.Bus;
using Ringvisor.Core.Interrupts;

namespace Ringvisor.Devices.Legacy;

public sealed class PcTestDevice
{
    public const ushort IoPortBase = 0xE0;
    public const int IoPortLength = 4;
    public const ushort FlushPagePort = 0xE4;
    public const int FlushPageLength = 4;
    public const ushort IrqPortBase = 0x2000;

    /// <summary>The 24 IRQ lines QEMU's ISA bus and IOAPIC route (GSIs 0-23).</summary>
    public const int IrqLineCount = 24;

    public const ulong IoMemBase = 0xFF00_0000;
    public const int IoMemLength = 0x1_0000;

    public PcTestDevice(Func<int, IInterruptLine> line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var lines = new IInterruptLine[IrqLineCount];
        for (int i = 0; i < lines.Length; i++)
        {
            lines[i] = line(i);
        }

        IrqLines = new IrqWindow(lines);
    }

    public IBusDevice IoPort { get; } = new Scratch(IoPortLength);

    public IBusDevice FlushPage { get; } = new Ignored();

    public IBusDevice IrqLines { get; }

    public IBusDevice IoMem { get; } = new Scratch(IoMemLength);

    /// <summary>Byte-addressed scratch storage; accesses are clipped to the window so no guest offset can overrun it.</summary>
    private sealed class Scratch(int length) : IBusDevice
    {
        private readonly byte[] _bytes = new byte[length];
        private readonly Lock _lock = new();

        public void Read(ulong offset, Span<byte> data)
        {
            data.Clear();
            lock (_lock)
            {
                if (offset < (ulong)_bytes.Length)
                {
                    int n = Math.Min(data.Length, _bytes.Length - (int)offset);
                    _bytes.AsSpan((int)offset, n).CopyTo(data);
                }
            }
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            lock (_lock)
            {
                if (offset < (ulong)_bytes.Length)
                {
                    int n = Math.Min(data.Length, _bytes.Length - (int)offset);
                    data[..n].CopyTo(_bytes.AsSpan((int)offset));
                }
            }
        }
    }

    private sealed class Ignored : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data) => data.Clear();

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
        }
    }

    private sealed class IrqWindow(IInterruptLine[] lines) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data) => data.Clear();

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            // Each byte of a wider write addresses the next line, as separate byte writes would.
            for (int i = 0; i < data.Length; i++)
            {
                ulong n = offset + (ulong)i;
                if (n < (ulong)lines.Length)
                {
                    lines[(int)n].SetLevel(data[i] != 0);
                }
            }
        }
    }
}
