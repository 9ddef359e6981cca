// A bump allocator over guest RAM for the test driver's rings and buffers.
using Ringvisor.Core.Memory;

namespace Ringvisor.Devices.Tests.Virtio.Driver;

internal sealed class GuestAllocator(GuestMemory memory, ulong start)
{
    private ulong _next = start;

    /// <summary>The next free address; setting it back frees everything allocated since (loops that reuse buffers).</summary>
    public ulong Position
    {
        get => _next;
        set => _next = value;
    }

    public ulong Allocate(ulong size, ulong align = 16)
    {
        ulong a = (_next + align - 1) & ~(align - 1);
        _next = a + size;
        if (!memory.IsRam(a, size))
        {
            throw new InvalidOperationException("test guest memory exhausted");
        }

        memory.Fill(a, (int)size, 0);
        return a;
    }
}
