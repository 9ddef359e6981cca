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

    public ulong? MmioBase => null;

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

    public void Read(ulong offset, Span<byte> data) => data.Clear();

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
    }

    public bool TryReadMsr(uint msr, out ulong value)
    {
        value = 0;
        return false;
    }

    public bool TryWriteMsr(uint msr, ulong value) => false;

    public void AttachWakeup(IVcpuWakeup wakeup) => _wakeup = wakeup;
}
