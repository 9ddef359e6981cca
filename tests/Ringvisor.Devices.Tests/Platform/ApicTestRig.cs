using Ringvisor.Devices.Platform;
using Ringvisor.Devices.Tests.Support;

namespace Ringvisor.Devices.Tests.Platform;

/// <summary>A small interrupt platform: APIC bus, N local APICs (IDs = indexes), IOAPIC, PIC and routing.</summary>
internal sealed class ApicTestRig
{
    public const ulong Svr = 0xF0, Tpr = 0x80, Ppr = 0xA0, Eoi = 0xB0, Ldr = 0xD0, Dfr = 0xE0, Isr = 0x100, Tmr = 0x180,
        Irr = 0x200, Esr = 0x280, IcrLow = 0x300, IcrHigh = 0x310, LvtTimer = 0x320, LvtLint0 = 0x350, InitialCount = 0x380,
        CurrentCount = 0x390, Divide = 0x3E0;

    public ApicTestRig(int cpus = 3)
    {
        Lapics = [.. Enumerable.Range(0, cpus).Select(i => new LocalApic(i, (byte)i, Bus, Clock, Clock))];
        Wakeups = [.. Lapics.Select(l =>
        {
            var w = new CountingWakeup();
            l.AttachWakeup(w);
            return w;
        })];
        IoApic = new IoApic(Bus);
        Routing = new PlatformInterruptController(Pic, IoApic, Bus);
    }

    public FakeClock Clock { get; } = new();

    public ApicBus Bus { get; } = new();

    public LocalApic[] Lapics { get; }

    public CountingWakeup[] Wakeups { get; }

    public IoApic IoApic { get; }

    public Pic8259Pair Pic { get; } = new();

    public PlatformInterruptController Routing { get; }

    /// <summary>Software-enables a LAPIC with spurious vector 0xFF.</summary>
    public void Enable(int index) => Lapics[index].Write32(Svr, 0x1FF);

    public void EnableAll()
    {
        for (int i = 0; i < Lapics.Length; i++)
        {
            Enable(i);
        }
    }

    public static bool Bit(LocalApic lapic, ulong bank, int vector) => (lapic.Read32(bank + ((ulong)(vector >> 5) * 0x10)) & (1u << (vector & 31))) != 0;

    public void WriteRedirection(int pin, ulong entry)
    {
        IoApic.Write32(0x00, (uint)(0x10 + (2 * pin)));
        IoApic.Write32(0x10, (uint)entry);
        IoApic.Write32(0x00, (uint)(0x11 + (2 * pin)));
        IoApic.Write32(0x10, (uint)(entry >> 32));
    }

    public ulong ReadRedirection(int pin)
    {
        IoApic.Write32(0x00, (uint)(0x10 + (2 * pin)));
        ulong lo = IoApic.Read32(0x10);
        IoApic.Write32(0x00, (uint)(0x11 + (2 * pin)));
        return lo | ((ulong)IoApic.Read32(0x10) << 32);
    }
}
