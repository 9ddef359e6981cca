// The driver's side of one split virtqueue (VIRTIO 1.2 §2.7.13): descriptor allocation, publishing chains
// (direct or through an indirect table), kicking, and reaping the used ring.
using Ringvisor.Core.Memory;

namespace Ringvisor.Devices.Tests.Virtio.Driver;

internal sealed class DriverQueue
{
    private const ushort FlagNext = 1, FlagWrite = 2, FlagIndirect = 4;

    private readonly TestVirtioDriver _driver;
    private readonly GuestMemory _memory;
    private readonly Stack<ushort> _free = new();
    private readonly Dictionary<ushort, List<ushort>> _inFlight = [];
    private ushort _availIdx;
    private ushort _lastUsed;

    public DriverQueue(TestVirtioDriver driver, int index, ushort size, bool eventIndex)
    {
        _driver = driver;
        _memory = driver.Machine.Memory;
        Index = index;
        Size = size;
        EventIndex = eventIndex;
        var alloc = driver.Machine.Allocator;
        DescriptorTable = alloc.Allocate(16UL * Math.Max(size, (ushort)1), 16);
        AvailRing = alloc.Allocate(6 + (2UL * size), 2);
        UsedRing = alloc.Allocate(6 + (8UL * size), 4);
        for (int i = size - 1; i >= 0; i--)
        {
            _free.Push((ushort)i);
        }
    }

    public int Index { get; }

    public ushort Size { get; }

    public bool EventIndex { get; }

    public ulong DescriptorTable { get; }

    public ulong AvailRing { get; }

    public ulong UsedRing { get; }

    public ulong NotifyAddress { get; set; }

    public int FreeDescriptors => _free.Count;

    public ushort UsedIndex => _memory.TryRead(UsedRing + 2, out ushort v) ? v : (ushort)0;

    /// <summary>The device's avail_event (§2.7.10), at the end of the used ring.</summary>
    public ushort AvailEvent => _memory.TryRead(UsedRing + 4 + (8UL * Size), out ushort v) ? v : (ushort)0;

    /// <summary>Writes used_event (§2.7.7): the driver wants an interrupt once used.idx passes it.</summary>
    public void SetUsedEvent(ushort value) => _memory.TryWrite(AvailRing + 4 + (2UL * Size), value);

    /// <summary>Sets VIRTQ_AVAIL_F_NO_INTERRUPT.</summary>
    public void SetNoInterrupt(bool on) => _memory.TryWrite(AvailRing, on ? (ushort)1 : (ushort)0);

    /// <summary>Publishes a chain of buffers (readable first, then writable); returns its head.</summary>
    public ushort Add(IReadOnlyList<DriverBuffer> buffers, bool indirect = false, bool kick = true)
    {
        ushort head;
        if (indirect)
        {
            ulong table = _driver.Machine.Allocator.Allocate(16UL * (ulong)buffers.Count, 16);
            for (int i = 0; i < buffers.Count; i++)
            {
                bool last = i == buffers.Count - 1;
                WriteDescriptor(table, (ushort)i, buffers[i], last ? null : (ushort)(i + 1), 0);
            }

            head = _free.Pop();
            _memory.TryWrite(DescriptorTable + (16UL * head), table);
            _memory.TryWrite(DescriptorTable + (16UL * head) + 8, (uint)(16 * buffers.Count));
            _memory.TryWrite(DescriptorTable + (16UL * head) + 12, FlagIndirect);
            _memory.TryWrite(DescriptorTable + (16UL * head) + 14, (ushort)0);
            _inFlight[head] = [head];
        }
        else
        {
            var ids = new List<ushort>();
            for (int i = 0; i < buffers.Count; i++)
            {
                ids.Add(_free.Pop());
            }

            for (int i = 0; i < buffers.Count; i++)
            {
                WriteDescriptor(DescriptorTable, ids[i], buffers[i], i == buffers.Count - 1 ? null : ids[i + 1], 0);
            }

            head = ids[0];
            _inFlight[head] = ids;
        }

        Publish(head);
        if (kick)
        {
            Kick();
        }

        return head;
    }

    /// <summary>Puts a raw head index in the avail ring (hostile tests).</summary>
    public void Publish(ushort head)
    {
        _memory.TryWrite(AvailRing + 4 + (2UL * (ulong)(_availIdx % Size)), head);
        _availIdx++;
        Interlocked.MemoryBarrier();
        _memory.TryWrite(AvailRing + 2, _availIdx);
    }

    public void Kick() => _driver.Write16(NotifyAddress, (ushort)Index);

    /// <summary>Takes the next used element, if any, and frees its descriptors.</summary>
    public bool TryTakeUsed(out ushort head, out uint length)
    {
        head = 0;
        length = 0;
        if (UsedIndex == _lastUsed)
        {
            return false;
        }

        ulong e = UsedRing + 4 + (8UL * (ulong)(_lastUsed % Size));
        _memory.TryRead(e, out uint id);
        _memory.TryRead(e + 4, out length);
        _lastUsed++;
        head = (ushort)id;
        if (_inFlight.Remove(head, out var ids))
        {
            foreach (var d in ids)
            {
                _free.Push(d);
            }
        }

        return true;
    }

    /// <summary>Waits (for worker-thread devices) until a used element appears; throws on timeout.</summary>
    public (ushort Head, uint Length) WaitUsed(int timeoutMs = 10_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        var spinner = default(SpinWait);
        while (true)
        {
            if (TryTakeUsed(out var h, out var l))
            {
                return (h, l);
            }

            if (Environment.TickCount64 > deadline)
            {
                throw new TimeoutException($"queue {Index}: no used buffer within {timeoutMs} ms");
            }

            // Spin (yielding) briefly, as a driver polling a fast device would, then back off to sleeping.
            if (spinner.Count < 2000)
            {
                spinner.SpinOnce(sleep1Threshold: -1);
            }
            else
            {
                Thread.Sleep(1);
            }
        }
    }

    private void WriteDescriptor(ulong table, ushort index, DriverBuffer b, ushort? next, ushort extraFlags)
    {
        ulong d = table + (16UL * index);
        ushort flags = (ushort)(extraFlags | (b.DeviceWritable ? FlagWrite : 0) | (next is null ? 0 : FlagNext));
        _memory.TryWrite(d, b.Address);
        _memory.TryWrite(d + 8, b.Length);
        _memory.TryWrite(d + 12, flags);
        _memory.TryWrite(d + 14, next ?? (ushort)0);
    }
}
