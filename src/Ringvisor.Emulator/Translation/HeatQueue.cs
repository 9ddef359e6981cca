// The background translator's queue of units waiting for the JIT, ordered at each take: the unit whose code ran most
// while it waited (vCPUs report executions of a pending unit's slots: Touch), decayed at each take so that code hot
// now beats code that was hot a while ago; among equals the newest. Plain last-in first-out (the code that is hot now
// before requests queued earlier, which may have gone cold) was ~4% faster to ready than first-in first-out; by heat a
// unit whose loop the interpreter keeps running while hundreds of colder requests arrive is compiled next.
using System.Collections.Concurrent;

namespace Ringvisor.Emulator.Translation;

internal sealed class HeatQueue<T>
{
    private readonly int _capacity;
    private readonly List<Entry> _queue = [];

    // Queued or being compiled (until Done), by key: what Touch finds.
    private readonly ConcurrentDictionary<UnitKey, Entry> _pending = new();
    private long _sequence;

    private sealed class Entry(UnitKey key, T item, long sequence)
    {
        public readonly UnitKey Key = key;
        public readonly T Item = item;
        public readonly long Sequence = sequence;

        // Executions reported while queued (racy increments from vCPUs: a lost one only blurs the order).
        public int Heat;
    }

    /// <param name="capacity">Requests beyond this many pending are refused (the vCPU asks again later).</param>
    public HeatQueue(int capacity) => _capacity = capacity;

    /// <summary>Requests queued and not yet taken.</summary>
    public int Count
    {
        get
        {
            lock (_queue)
            {
                return _queue.Count;
            }
        }
    }

    public bool IsEmpty => Count == 0;

    /// <summary>Queues <paramref name="item"/> unless its key is pending already or the queue is full.</summary>
    public bool TryAdd(UnitKey key, T item)
    {
        if (_pending.Count >= _capacity)
        {
            return false;
        }

        var e = new Entry(key, item, Interlocked.Increment(ref _sequence));
        if (!_pending.TryAdd(key, e))
        {
            return false;
        }

        lock (_queue)
        {
            _queue.Add(e);
        }

        return true;
    }

    /// <summary>Code of the pending unit <paramref name="key"/> ran (a vCPU calls this every few executions):
    /// whether it is still queued or being compiled.</summary>
    public bool Touch(UnitKey key)
    {
        if (!_pending.TryGetValue(key, out var e))
        {
            return false;
        }

        e.Heat++;
        return true;
    }

    /// <summary>Takes the hottest entry (the newest among equals) and decays the others' heat by a quarter. It stays
    /// pending until <see cref="Done"/>.</summary>
    public bool TryTake(out UnitKey key, out T item)
    {
        lock (_queue)
        {
            int best = -1;
            for (int i = 0; i < _queue.Count; i++)
            {
                var q = _queue[i];
                if (best < 0 || q.Heat > _queue[best].Heat || (q.Heat == _queue[best].Heat && q.Sequence > _queue[best].Sequence))
                {
                    best = i;
                }
            }

            if (best < 0)
            {
                key = default;
                item = default!;
                return false;
            }

            var e = _queue[best];
            _queue[best] = _queue[^1];
            _queue.RemoveAt(_queue.Count - 1);
            foreach (var q in _queue)
            {
                q.Heat -= q.Heat >> 2;
            }

            key = e.Key;
            item = e.Item;
            return true;
        }
    }

    /// <summary>The unit taken for <paramref name="key"/> is in the cache (or rejected): no longer pending.</summary>
    public void Done(UnitKey key) => _pending.TryRemove(key, out _);
}
