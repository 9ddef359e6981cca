// A split virtqueue (VIRTIO 1.2 §2.7): the driver's configuration of it, popping validated descriptor chains from
// the available ring, and pushing completions to the used ring with the notification-suppression rules of
// §2.7.7 (used_event / VIRTQ_AVAIL_F_NO_INTERRUPT) and §2.7.10 (avail_event). Every value read from guest memory
// is checked before use; a ring that breaks the rules stops the queue with a VirtqueueError.
//
// Ordering: the avail index is read before the ring entries and descriptors it publishes (acquire); a used element
// is written before the used index that publishes it (release); the full fences around event indexes pair with
// the driver's (§2.7.7.2, §2.7.10). Not thread-safe: the transport serialises access per device.
using System.Runtime.InteropServices;
using Ringvisor.Core.Memory;

namespace Ringvisor.Devices.Virtio;

public sealed class Virtqueue
{
    /// <summary>Largest queue a split ring can have (§2.7: Queue Size is at most 32768).</summary>
    public const ushort AbsoluteMaxSize = 32768;

    // §2.7.5 descriptor flags.
    private const ushort DescFlagNext = 1;
    private const ushort DescFlagWrite = 2;
    private const ushort DescFlagIndirect = 4;
    private const int DescriptorSize = 16;

    /// <summary>§2.7.6 VIRTQ_AVAIL_F_NO_INTERRUPT.</summary>
    private const ushort AvailFlagNoInterrupt = 1;

    /// <summary>Alignment of descriptor table, available ring and used ring (§2.7 table "Virtqueue Part Alignment").</summary>
    private const ulong DescAlign = 16, AvailAlign = 2, UsedAlign = 4;

    private readonly GuestMemory _memory;
    private readonly DescriptorChain _chain = new();
    private ushort _lastAvail;
    private ushort _nextUsed;
    private ushort _signalledUsed;

    public Virtqueue(GuestMemory memory, int index, ushort maxSize)
    {
        _memory = memory;
        Index = index;
        MaxSize = maxSize;
        Reset();
    }

    public int Index { get; }

    public ushort MaxSize { get; }

    // Driver-programmed configuration (§4.1.4.3 queue_* fields).
    public ushort Size { get; set; }

    public ushort MsixVector { get; set; }

    public bool Enabled { get; private set; }

    public ulong DescriptorTable { get; set; }

    public ulong DriverArea { get; set; }

    public ulong DeviceArea { get; set; }

    /// <summary>Negotiated ring features.</summary>
    public bool IndirectEnabled { get; set; }

    public bool EventIndexEnabled { get; set; }

    /// <summary>The first rule the driver broke on this queue, or None.</summary>
    public VirtqueueError Error { get; private set; }

    public bool IsBroken => Error != VirtqueueError.None;

    public ushort LastAvailIndex => _lastAvail;

    public ushort NextUsedIndex => _nextUsed;

    /// <summary>Back to the reset state (§4.1.4.3: size = maximum, vector = NO_VECTOR, disabled).</summary>
    public void Reset()
    {
        Size = MaxSize;
        MsixVector = VirtioPciTransport.NoVector;
        Enabled = false;
        DescriptorTable = DriverArea = DeviceArea = 0;
        IndirectEnabled = EventIndexEnabled = false;
        Error = VirtqueueError.None;
        _lastAvail = _nextUsed = _signalledUsed = 0;
    }

    public VirtqueueState Save() => new(
        Size, MsixVector, Enabled, DescriptorTable, DriverArea, DeviceArea, IndirectEnabled, EventIndexEnabled, Error,
        _lastAvail, _nextUsed, _signalledUsed);

    /// <summary>Restores <see cref="Save"/>; an enabled queue is re-validated against this VM's RAM.</summary>
    public void Restore(VirtqueueState s)
    {
        Reset();
        Size = s.Size;
        MsixVector = s.MsixVector;
        DescriptorTable = s.DescriptorTable;
        DriverArea = s.DriverArea;
        DeviceArea = s.DeviceArea;
        IndirectEnabled = s.IndirectEnabled;
        EventIndexEnabled = s.EventIndexEnabled;
        _lastAvail = s.LastAvailIndex;
        _nextUsed = s.NextUsedIndex;
        _signalledUsed = s.SignalledUsedIndex;
        if (s.Enabled)
        {
            Enable();
        }

        if (s.Error != VirtqueueError.None)
        {
            Fail(s.Error);
        }
    }

    /// <summary>The driver wrote 1 to queue_enable: validate the configuration (size, alignment, rings in RAM).</summary>
    public VirtqueueError Enable()
    {
        Enabled = true;
        ushort n = Size;
        if (n == 0 || n > MaxSize || (n & (n - 1)) != 0)
        {
            return Fail(VirtqueueError.BadQueueSize);
        }

        ulong descBytes = (ulong)n * DescriptorSize;
        ulong availBytes = 6 + (2UL * n);
        ulong usedBytes = 6 + (8UL * n);
        if (DescriptorTable % DescAlign != 0 || DriverArea % AvailAlign != 0 || DeviceArea % UsedAlign != 0 ||
            !_memory.IsRam(DescriptorTable, descBytes) || !_memory.IsRam(DriverArea, availBytes) || !_memory.IsRam(DeviceArea, usedBytes))
        {
            return Fail(VirtqueueError.BadRingAddress);
        }

        return VirtqueueError.None;
    }

    /// <summary>Marks the queue broken (first error wins); it pops nothing more until reset.</summary>
    public VirtqueueError Fail(VirtqueueError error)
    {
        if (Error == VirtqueueError.None)
        {
            Error = error;
        }

        return error;
    }

    public bool IsReady => Enabled && !IsBroken;

    /// <summary>Whether the driver has published chains the device has not taken yet.</summary>
    public bool HasAvailable => IsReady && ReadAvailIndex() != _lastAvail;

    /// <summary>
    /// Takes the next available chain. Returns false when the ring is empty or the queue is (or just became)
    /// broken; check <see cref="IsBroken"/>. The returned chain object is reused by the next call.
    /// </summary>
    public bool TryPop(out DescriptorChain chain)
    {
        chain = _chain;
        if (!IsReady)
        {
            return false;
        }

        ushort availIdx = ReadAvailIndex();
        ushort pending = (ushort)(availIdx - _lastAvail);
        if (pending == 0)
        {
            return false;
        }

        if (pending > Size)
        {
            Fail(VirtqueueError.BadAvailIndex);
            return false;
        }

        // Acquire: ring entries and descriptors are read only after the index that published them.
        Interlocked.MemoryBarrier();
        ushort head = ReadU16(DriverArea + 4 + (2UL * (ulong)(_lastAvail % Size)));
        var error = Walk(head, _chain);
        if (error != VirtqueueError.None)
        {
            Fail(error);
            return false;
        }

        _lastAvail++;
        return true;
    }

    /// <summary>Gives back the most recently popped chain so it is seen again (e.g. no rx buffer space yet).</summary>
    public void Unpop() => _lastAvail--;

    /// <summary>Returns chain <paramref name="head"/> to the driver with <paramref name="written"/> bytes written.</summary>
    public void PushUsed(ushort head, uint written)
    {
        if (!IsReady)
        {
            return;
        }

        ulong elem = DeviceArea + 4 + (8UL * (ulong)(_nextUsed % Size));
        _memory.TryWrite(elem, (uint)head);
        _memory.TryWrite(elem + 4, written);
        _nextUsed++;

        // Release: the element must be visible before the index that publishes it.
        Interlocked.MemoryBarrier();
        WriteU16(DeviceArea + 2, _nextUsed);
    }

    /// <summary>
    /// After pushing completions: whether the driver wants an interrupt now (§2.7.7.2). With event index the
    /// driver asks for one when used.idx passes used_event; otherwise unless it set NO_INTERRUPT.
    /// </summary>
    public bool ShouldNotify()
    {
        if (!IsReady)
        {
            return false;
        }

        // Pairs with the driver's fence between publishing used_event/flags and reading used.idx.
        Interlocked.MemoryBarrier();
        ushort old = _signalledUsed;
        ushort now = _nextUsed;
        _signalledUsed = now;
        if (old == now)
        {
            return false; // nothing completed since the last decision
        }

        if (EventIndexEnabled)
        {
            // vring_need_event: did used.idx step over used_event while moving from old to now?
            ushort usedEvent = ReadU16(DriverArea + 4 + (2UL * Size));
            return (ushort)(now - usedEvent - 1) < (ushort)(now - old);
        }

        return (ReadU16(DriverArea) & AvailFlagNoInterrupt) == 0;
    }

    /// <summary>
    /// With event index: tells the driver to notify when it publishes anything past what the device has taken
    /// (avail_event = last seen index, §2.7.10). Returns true if more chains arrived meanwhile (process again).
    /// </summary>
    public bool EnableNotification()
    {
        if (!IsReady || !EventIndexEnabled)
        {
            return HasAvailable;
        }

        WriteU16(DeviceArea + 4 + (8UL * Size), _lastAvail);
        Interlocked.MemoryBarrier();
        return ReadAvailIndex() != _lastAvail;
    }

    /// <summary>
    /// The device consumed nothing but needs more buffers than are available (mergeable receive): asks the driver
    /// to notify on its next addition (avail_event = current avail.idx). Returns true if buffers arrived meanwhile.
    /// </summary>
    public bool WaitForMoreBuffers(ushort availSeen)
    {
        if (!IsReady)
        {
            return false;
        }

        if (EventIndexEnabled)
        {
            WriteU16(DeviceArea + 4 + (8UL * Size), availSeen);
            Interlocked.MemoryBarrier();
        }

        return ReadAvailIndex() != availSeen;
    }

    /// <summary>The driver's avail.idx as of now.</summary>
    public ushort PeekAvailIndex() => IsReady ? ReadAvailIndex() : _lastAvail;

    private VirtqueueError Walk(ushort head, DescriptorChain chain)
    {
        chain.Clear();
        chain.Head = head;
        if (head >= Size)
        {
            return VirtqueueError.BadDescriptorIndex;
        }

        ulong table = DescriptorTable;
        uint tableCount = Size;
        bool inIndirect = false;
        bool sawWritable = false;
        int visited = 0;
        ushort index = head;
        while (true)
        {
            // §2.7.5.3.1: a chain, indirect descriptors included, is never longer than the queue; this also ends loops.
            if (++visited > Size)
            {
                return VirtqueueError.ChainTooLong;
            }

            ulong d = table + ((ulong)index * DescriptorSize);
            if (!_memory.TryRead(d, out ulong addr) || !_memory.TryRead(d + 8, out uint len) ||
                !_memory.TryRead(d + 12, out ushort flags) || !_memory.TryRead(d + 14, out ushort next))
            {
                return VirtqueueError.BadDescriptorIndex;
            }

            if ((flags & DescFlagIndirect) != 0)
            {
                // §2.7.5.3.1: only with the feature, never inside an indirect table, never together with NEXT,
                // and the table is a whole, non-empty number of descriptors.
                if (!IndirectEnabled || inIndirect || (flags & DescFlagNext) != 0 || len == 0 || len % DescriptorSize != 0)
                {
                    return VirtqueueError.BadIndirect;
                }

                if (!_memory.IsRam(addr, len) || addr % DescAlign != 0)
                {
                    return VirtqueueError.BadBufferAddress;
                }

                table = addr;
                tableCount = len / DescriptorSize;
                inIndirect = true;
                index = 0;
                continue;
            }

            if (len != 0 && !_memory.IsRam(addr, len))
            {
                return VirtqueueError.BadBufferAddress;
            }

            bool writable = (flags & DescFlagWrite) != 0;
            if (!writable && sawWritable)
            {
                return VirtqueueError.BadDescriptorOrder;
            }

            sawWritable |= writable;
            if (len != 0)
            {
                chain.Add(new ChainSegment(addr, len), writable);
            }

            if ((flags & DescFlagNext) == 0)
            {
                return VirtqueueError.None;
            }

            if (next >= tableCount)
            {
                return VirtqueueError.BadDescriptorIndex;
            }

            index = next;
        }
    }

    private ushort ReadAvailIndex() => ReadU16(DriverArea + 2);

    private ushort ReadU16(ulong gpa)
    {
        // Ring fields are naturally aligned (checked at enable), so a volatile 16-bit load is single-copy atomic.
        return _memory.TryGetSpan(gpa, 2, out var s) ? Volatile.Read(ref MemoryMarshal.Cast<byte, ushort>(s)[0]) : (ushort)0;
    }

    private void WriteU16(ulong gpa, ushort value)
    {
        if (_memory.TryGetWritableSpan(gpa, 2, out var s))
        {
            Volatile.Write(ref MemoryMarshal.Cast<byte, ushort>(s)[0], value);
        }
    }
}
