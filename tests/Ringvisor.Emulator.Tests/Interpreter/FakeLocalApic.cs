// A scripted local interrupt controller for run-loop tests: vectors are queued from any thread.
using System.Collections.Concurrent;
using Ringvisor.Core.Interrupts;

namespace Ringvisor.Emulator.Tests.Interpreter;

internal sealed class FakeLocalApic : ILocalInterruptController
{
    private readonly ConcurrentQueue<int> _pending = new();
    private IVcpuWakeup? _wakeup;
    private int _nmi;
    private int _init;
    private int _sipi = -1;

    private ulong? _mmioBase;

    /// <summary>The xAPIC page: none until the guest writes IA32_APIC_BASE with the enable bit (tests of the page's routing).</summary>
    public ulong? MmioBase => _mmioBase;

    /// <summary>The byte every register read returns.</summary>
    public byte ReadFill { get; set; }

    public bool HasInterrupt => !_pending.IsEmpty;

    public int Acknowledged { get; private set; }

    public void Raise(int vector)
    {
        _pending.Enqueue(vector);
        _wakeup?.Wake();
    }

    public void RaiseNmi()
    {
        Interlocked.Exchange(ref _nmi, 1);
        _wakeup?.Wake();
    }

    public int AcknowledgeInterrupt()
    {
        if (_pending.TryDequeue(out int v))
        {
            Acknowledged++;
            return v;
        }

        return -1;
    }

    public bool TakeNmi() => Interlocked.Exchange(ref _nmi, 0) == 1;

    public void RaiseInit()
    {
        Interlocked.Exchange(ref _init, 1);
        _wakeup?.Wake();
    }

    public void RaiseStartup(byte vector)
    {
        Interlocked.Exchange(ref _sipi, vector);
        _wakeup?.Wake();
    }

    public bool TakeInit() => Interlocked.Exchange(ref _init, 0) == 1;

    public bool TryTakeStartup(out byte vector)
    {
        int v = Interlocked.Exchange(ref _sipi, -1);
        vector = (byte)Math.Max(v, 0);
        return v >= 0;
    }

    public void Read(ulong offset, Span<byte> data) => data.Fill(ReadFill);

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
    }

    public bool TryReadMsr(uint msr, out ulong value)
    {
        value = 0;
        return false;
    }

    public bool TryWriteMsr(uint msr, ulong value)
    {
        // IA32_APIC_BASE (SDM Vol. 3A §10.4.4): bit 11 enables the xAPIC, bits 12+ hold the page.
        if (msr != 0x1B)
        {
            return false;
        }

        _mmioBase = (value & (1UL << 11)) != 0 ? value & ~0xFFFUL : null;
        return true;
    }

    public void AttachWakeup(IVcpuWakeup wakeup) => _wakeup = wakeup;
}
