// Translates units on a worker thread so a vCPU keeps interpreting instead of waiting for the emitter and the JIT
// (QEMU's TCG translates synchronously; here a unit costs far more to compile, see Translation/README.md). The default
// (BtOptions.BackgroundTranslation). One per VM, started on demand; the thread exits after a few idle seconds, so a
// finished VM leaves no thread behind for long. The vCPU finds finished units by polling the shared cache.
using System.Diagnostics;

namespace Ringvisor.Emulator.Translation;

internal sealed class BackgroundTranslator
{
    private const int IdleExitMilliseconds = 3000;

    // Requests beyond this many queued are dropped (the vCPU asks again later): bounds memory after a burst.
    private const int MaxQueued = 4096;

    private readonly TranslationCache _cache;
    private readonly BtStats _stats;
    private readonly bool _collectStats;
    private readonly HeatQueue<(List<UnitInstruction> Instructions, byte[] Page, int PageOffset, CrossingPage? Crossing, List<RegionPage> OtherPages)> _queue = new(MaxQueued);
    private readonly SemaphoreSlim _signal = new(0, int.MaxValue);
    private int _running;
    private int _reportedFailure;

    public BackgroundTranslator(TranslationCache cache, BtStats stats, bool collectStats)
    {
        _cache = cache;
        _stats = stats;
        _collectStats = collectStats;
    }

    /// <summary>Queues a unit (its instructions, chosen by the vCPU) for compilation; <paramref name="page"/> holds the
    /// page's bytes from offset <paramref name="pageOffset"/> (UnitCompiler.Compile).</summary>
    public void Request(UnitKey key, List<UnitInstruction> instructions, byte[] page, int pageOffset, CrossingPage? crossing, List<RegionPage> otherPages)
    {
        if (!_queue.TryAdd(key, (instructions, page, pageOffset, crossing, otherPages)))
        {
            return;
        }

        _signal.Release();
        if (Interlocked.CompareExchange(ref _running, 1, 0) == 0)
        {
            var t = new Thread(Work) { IsBackground = true, Name = "bt-translator" };
            t.Start();
        }
    }

    /// <summary>A vCPU ran code of the pending unit <paramref name="key"/> (it calls this every few executions):
    /// whether the unit is still queued or being compiled.</summary>
    public bool Touch(UnitKey key) => _queue.Touch(key);

    // Open unless a test holds the worker (Hold/Release): requests then stay queued, and their regions pending.
    private readonly ManualResetEventSlim _open = new(true);

    /// <summary>Tests: the worker takes nothing until <see cref="Release"/> (regions chosen meanwhile see the queued
    /// ones as pending).</summary>
    internal void Hold() => _open.Reset();

    internal void Release() => _open.Set();

    /// <summary>Requests waiting for the worker.</summary>
    internal int Queued => _queue.Count;

    private void Work()
    {
        while (true)
        {
            while (_signal.Wait(IdleExitMilliseconds))
            {
                _open.Wait();
                if (_queue.TryTake(out var key, out var r))
                {
                    Translate(key, r.Instructions, r.Page, r.PageOffset, r.Crossing, r.OtherPages);
                    _queue.Done(key);
                }
            }

            Volatile.Write(ref _running, 0);

            // A request queued between the timeout and the flag reset must not be stranded.
            if (_queue.IsEmpty || Interlocked.CompareExchange(ref _running, 1, 0) != 0)
            {
                return;
            }
        }
    }

    private void Translate(UnitKey key, List<UnitInstruction> instructions, byte[] page, int pageOffset, CrossingPage? crossing, List<RegionPage> otherPages)
    {
        long t0 = Stopwatch.GetTimestamp();
        TranslatedUnit unit;
        try
        {
            unit = UnitCompiler.Compile(instructions, key, page, crossing, otherPages, pageOffset, _cache.IsDemoted(key.PhysPage, key.EntryOffset));
        }
        catch (Exception e) when (e is InvalidProgramException or InvalidOperationException or NotSupportedException or ArgumentException)
        {
            // A translator bug must not take the VM down from this thread: the code stays interpreted (the interpreter
            // is the reference). Reported once; the synchronous mode used by the tests lets such errors surface.
            _cache.Reject(key);
            _stats.TranslationRejectedOnce();
            if (Interlocked.Exchange(ref _reportedFailure, 1) == 0)
            {
                Console.Error.WriteLine($"ringvisor: translating code at physical page {key.PhysPage:x}+{key.EntryOffset:x3} failed ({e.GetType().Name}: {e.Message}); it stays interpreted");
            }

            return;
        }

        _ = _cache.Add(unit);
        if (_collectStats)
        {
            _stats.UnitTranslated(instructions.Count, Stopwatch.GetTimestamp() - t0, _cache.Bytes, _cache.Flushes);
        }
    }
}
