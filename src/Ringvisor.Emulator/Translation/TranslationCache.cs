// The per-VM cache of translated units, shared by the vCPUs (translated code takes the vCPU as an argument). Bounded by
// an estimate of the generated code's size: when a new unit would exceed the budget the whole cache is flushed (QEMU's
// TCG does the same with its code buffer); flushed units are marked evicted so vCPU lookup tables drop them and the GC
// can collect their DynamicMethods.
using System.Collections.Concurrent;

namespace Ringvisor.Emulator.Translation;

internal sealed class TranslationCache
{
    private const int MaxRejected = 1 << 16;

    private readonly ConcurrentDictionary<UnitKey, TranslatedUnit> _units = new();
    private readonly ConcurrentDictionary<UnitKey, bool> _rejected = new();
    private readonly long _budgetBytes;
    private readonly object _flushLock = new();
    private long _bytes;
    private long _flushes;

    public TranslationCache(long budgetBytes)
    {
        _budgetBytes = Math.Max(1, budgetBytes);
    }

    public long Bytes => Interlocked.Read(ref _bytes);

    public long Flushes => Interlocked.Read(ref _flushes);

    public int Count => _units.Count;

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
