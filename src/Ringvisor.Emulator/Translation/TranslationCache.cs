// The per-VM cache of translated units, shared by the vCPUs (translated code takes the vCPU as an argument). Bounded by
// an estimate of the generated code's size: when a new unit would exceed the budget the whole cache is flushed (QEMU's
// TCG does the same with its code buffer); flushed units are marked evicted so vCPU unit slots drop them and the GC
// can collect their DynamicMethods.
using System.Collections.Concurrent;

namespace Ringvisor.Emulator.Translation;

internal sealed class TranslationCache
{
    private const int MaxRejected = 1 << 16;

    // Units added between two sweeps for stale units (a few thousand units per Linux boot: a handful of sweeps of a
    // few microseconds each).
    private const int SweepInterval = 256;

    private readonly ConcurrentDictionary<UnitKey, TranslatedUnit> _units = new();
    private readonly ConcurrentDictionary<UnitKey, bool> _rejected = new();
    private readonly long _budgetBytes;
    private readonly object _flushLock = new();
    private long _bytes;
    private long _flushes;
    private long _stale;
    private int _addsSinceSweep;

    public TranslationCache(long budgetBytes)
    {
        _budgetBytes = Math.Max(1, budgetBytes);
    }

    public long Bytes => Interlocked.Read(ref _bytes);

    public long Flushes => Interlocked.Read(ref _flushes);

    public int Count => _units.Count;

    /// <summary>Units dropped because their page was rewritten (see <see cref="SweepStale"/>).</summary>
    public long StaleDropped => Interlocked.Read(ref _stale);

    public bool TryGet(UnitKey key, out TranslatedUnit? unit) => _units.TryGetValue(key, out unit);

    /// <summary>Entries where no unit can be built (the first instruction is not translatable).</summary>
    public bool IsRejected(UnitKey key) => _rejected.ContainsKey(key);

    public void Reject(UnitKey key)
    {
        if (_rejected.Count >= MaxRejected)
        {
            _rejected.Clear();
        }

        _rejected.TryAdd(key, true);
    }

    /// <summary>The VM's background translator (created on first use).</summary>
    public BackgroundTranslator? Background { get; set; }

    /// <summary>Adds a unit, replacing (and evicting) one with the same key, flushing everything when over budget.</summary>
    public TranslatedUnit Add(TranslatedUnit unit)
    {
        if (Interlocked.Read(ref _bytes) + unit.EstimatedBytes > _budgetBytes)
        {
            Flush();
        }

        Interlocked.Add(ref _bytes, unit.EstimatedBytes);
        _units.AddOrUpdate(unit.Key, unit, (_, old) =>
        {
            // Same key, other bytes (see TranslatedUnit.Source) or a concurrent translation: the newest wins.
            old.Evicted = true;
            Interlocked.Add(ref _bytes, -old.EstimatedBytes);
            return unit;
        });
        return unit;
    }

    /// <summary>
    /// Every <see cref="SweepInterval"/> additions, drops the units whose page has been written since they were
    /// translated. Their key holds the old generation, so no lookup finds them again, but until a whole flush they
    /// kept their DynamicMethod and JIT-compiled code alive (a booting kernel frees its init code and reuses the pages).
    /// </summary>
    public void SweepStaleIfDue(Memory.CodePageTracker tracker)
    {
        if (Interlocked.Increment(ref _addsSinceSweep) < SweepInterval)
        {
            return;
        }

        Interlocked.Exchange(ref _addsSinceSweep, 0);
        SweepStale(tracker);
    }

    /// <summary>Drops every unit whose page generation is no longer current.</summary>
    public void SweepStale(Memory.CodePageTracker tracker)
    {
        lock (_flushLock)
        {
            foreach (var kv in _units)
            {
                if (tracker.PageGeneration(kv.Key.PhysPage) != kv.Key.Generation && _units.TryRemove(kv))
                {
                    kv.Value.Evicted = true;
                    Interlocked.Add(ref _bytes, -kv.Value.EstimatedBytes);
                    Interlocked.Increment(ref _stale);
                }
            }
        }
    }

    public void Flush()
    {
        lock (_flushLock)
        {
            foreach (var kv in _units)
            {
                if (_units.TryRemove(kv.Key, out var u))
                {
                    u.Evicted = true;
                    Interlocked.Add(ref _bytes, -u.EstimatedBytes);
                }
            }

            Interlocked.Increment(ref _flushes);
        }
    }
}
