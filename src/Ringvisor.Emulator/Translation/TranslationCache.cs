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

    // The units of each code page (any generation), so a store to the page evicts them at once (OnPageWritten): the
    // dispatcher then validates a chain link or jump-cache entry by its target's Evicted flag alone.
    private readonly ConcurrentDictionary<ulong, List<TranslatedUnit>> _byPage = new();
    private readonly Memory.CodePageTracker? _tracker;

    // The latest unit per entry (page, bitness, offset) whatever its generation, live or swept as stale: a rewritten
    // page's units whose bytes did not change are taken over from here (TranslatedUnit.ForGeneration). Swept units
    // stay reachable from here only, at most MaxRetired of them (they keep their compiled code alive).
    private readonly ConcurrentDictionary<(ulong PhysPage, int Bitness, int EntryOffset), TranslatedUnit> _latest = new();
    private const int MaxRetired = 128;
    private int _retired;
    private readonly long _budgetBytes;
    private readonly object _flushLock = new();
    private long _bytes;
    private long _flushes;
    private long _stale;
    private int _addsSinceSweep;

    /// <param name="budgetBytes">Estimated code size at which the whole cache is flushed.</param>
    /// <param name="tracker">The VM's code-page tracker: units are evicted when their page is written (without it
    /// only by <see cref="SweepStale"/>, and callers must check the generation themselves).</param>
    public TranslationCache(long budgetBytes, Memory.CodePageTracker? tracker = null)
    {
        _budgetBytes = Math.Max(1, budgetBytes);
        _tracker = tracker;
        if (tracker is not null)
        {
            tracker.PageWritten += OnPageWritten;
        }
    }

    public long Bytes => Interlocked.Read(ref _bytes);

    public long Flushes => Interlocked.Read(ref _flushes);

    public int Count => _units.Count;

    /// <summary>Units dropped because their page was rewritten (see <see cref="SweepStale"/>).</summary>
    public long StaleDropped => Interlocked.Read(ref _stale);

    public bool TryGet(UnitKey key, out TranslatedUnit? unit) => _units.TryGetValue(key, out unit);

    /// <summary>The units in the cache now (their own entries and side entries; tests and diagnostics).</summary>
    internal IEnumerable<TranslatedUnit> Units => _units.Values;

    /// <summary>The latest unit added for <paramref name="key"/>'s entry under another generation of its page (live or
    /// swept as stale; not one dropped by a whole flush), to be taken over when its bytes are unchanged.</summary>
    public TranslatedUnit? Earlier(UnitKey key) =>
        _latest.TryGetValue((key.PhysPage, key.Bitness, key.EntryOffset), out var u) && u.Key.Generation != key.Generation &&
        (u.CallsOnMiss || !IsDemoted(u.Key.PhysPage, u.RegionEntry)) ? u : null;

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

    /// <summary>Adds a unit, replacing (and evicting) one with the same key, flushing everything when over budget; then
    /// its side entries (<see cref="TranslatedUnit.SideEntries"/>) under their own offsets, where no unit is yet.</summary>
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
        Listed(unit);
        if (unit.SideEntries is { } side && unit.EntryIndex == 0)
        {
            for (int i = 0; i < side.Length; i++)
            {
                var entered = unit.ForSideEntry(i);
                if (_units.TryAdd(entered.Key, entered))
                {
                    Listed(entered);
                }
            }
        }

        return unit;
    }

    /// <summary>Records a unit just put into the cache as its entry's latest and among its page's units, evicting it at
    /// once when its page was written meanwhile.</summary>
    private void Listed(TranslatedUnit unit)
    {
        _latest[(unit.Key.PhysPage, unit.Key.Bitness, unit.Key.EntryOffset)] = unit;

        if (_tracker is not null)
        {
            // Listed before the generation is read again: a store that bumped it after this read finds the unit in
            // the list (OnPageWritten), one before it is seen here.
            var list = _byPage.GetOrAdd(unit.Key.PhysPage, _ => []);
            lock (list)
            {
                list.Add(unit);
            }

            if (_tracker.PageGeneration(unit.Key.PhysPage) != unit.Key.Generation)
            {
                EvictStale(unit.Key.PhysPage);
            }
        }
    }

    /// <summary>The tracker's report of a store to a code page (on the storing thread): its units are stale.</summary>
    private void OnPageWritten(ulong physicalAddress) => EvictStale(physicalAddress >> 12);

    /// <summary>Evicts and drops the units of page <paramref name="physPage"/> translated for an older generation.</summary>
    private void EvictStale(ulong physPage)
    {
        if (!_byPage.TryGetValue(physPage, out var list))
        {
            return;
        }

        int generation = _tracker!.PageGeneration(physPage);
        lock (list)
        {
            for (int i = list.Count - 1; i >= 0; i--)
            {
                var u = list[i];
                if (u.Key.Generation == generation && !u.Evicted)
                {
                    continue;
                }

                list.RemoveAt(i);
                DropStale(u);
            }
        }
    }

    /// <summary>Evicts a unit whose page moved on and, unless something else already took it out of the cache (a
    /// newer unit under the same key, a flush), drops it and counts it as stale and retired.</summary>
    private void DropStale(TranslatedUnit u)
    {
        u.Evicted = true;
        if (_units.TryRemove(new KeyValuePair<UnitKey, TranslatedUnit>(u.Key, u)))
        {
            Interlocked.Add(ref _bytes, -u.EstimatedBytes);
            Interlocked.Increment(ref _stale);
            Interlocked.Increment(ref _retired);
        }
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
                if (tracker.PageGeneration(kv.Key.PhysPage) != kv.Key.Generation)
                {
                    DropStale(kv.Value);
                }
            }

            if (Volatile.Read(ref _retired) > MaxRetired)
            {
                // Let the oldest retirees' code go: keep only entries whose unit is live.
                foreach (var kv in _latest)
                {
                    if (kv.Value.Evicted)
                    {
                        _latest.TryRemove(kv);
                    }
                }

                Interlocked.Exchange(ref _retired, 0);
            }
        }
    }

    // Regions (page, entry offset) whose units left too many accesses to the interpreter (Demote): compiled again with
    // their accesses calling the accessor on a TLB miss.
    private readonly ConcurrentDictionary<(ulong Page, int Entry), byte> _demoted = new();

    /// <summary>Whether the region at <paramref name="entryOffset"/> of <paramref name="physPage"/> is compiled with
    /// accesses that call the accessor on a TLB miss (see <see cref="Demote"/>).</summary>
    public bool IsDemoted(ulong physPage, int entryOffset) => !_demoted.IsEmpty && _demoted.ContainsKey((physPage, entryOffset));

    /// <summary>
    /// A unit that keeps leaving instructions to the interpreter (an access whose TLB slot another page keeps taking,
    /// MMIO polled in a loop): records its region so that its next compilation calls the accessor on a TLB miss instead
    /// of exiting, and evicts every unit sharing its code, so that the vCPUs translate it again. False when the region
    /// was demoted already (its fallbacks have other causes: nothing to gain from compiling it again).
    /// </summary>
    public bool Demote(TranslatedUnit unit)
    {
        if (unit.CallsOnMiss || !_demoted.TryAdd((unit.Key.PhysPage, unit.RegionEntry), 0))
        {
            return false;
        }

        if (_byPage.TryGetValue(unit.Key.PhysPage, out var list))
        {
            lock (list)
            {
                for (int i = list.Count - 1; i >= 0; i--)
                {
                    var u = list[i];
                    if (u.Code == unit.Code)
                    {
                        list.RemoveAt(i);
                        Retire(u);
                    }
                }
            }
        }

        Retire(unit);
        return true;
    }

    /// <summary>Evicts a unit and takes it out of the tables that would find or take it over.</summary>
    private void Retire(TranslatedUnit u)
    {
        u.Evicted = true;
        if (_units.TryRemove(new KeyValuePair<UnitKey, TranslatedUnit>(u.Key, u)))
        {
            Interlocked.Add(ref _bytes, -u.EstimatedBytes);
        }

        _latest.TryRemove(new KeyValuePair<(ulong, int, int), TranslatedUnit>((u.Key.PhysPage, u.Key.Bitness, u.Key.EntryOffset), u));
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

            _latest.Clear();
            _byPage.Clear();
            Interlocked.Exchange(ref _retired, 0);

            Interlocked.Increment(ref _flushes);
        }
    }
}
