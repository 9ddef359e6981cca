// An eventfd(2) counter: what KVM_IRQFD and KVM_IOEVENTFD connect to (virtio doorbells and interrupts).
using System.Runtime.InteropServices;
using Ringvisor.Kvm.Native;

namespace Ringvisor.Kvm;

// SAFETY (whole class): read/write get the address of an 8-byte local and a length of 8, as eventfd(2) requires;
// poll gets a pinned array and its exact length.
public sealed unsafe class EventFd : IDisposable
{
    private readonly FileDescriptorHandle _fd;

    /// <param name="nonBlocking">EFD_NONBLOCK: <see cref="TryRead"/> returns false instead of waiting.</param>
    public EventFd(bool nonBlocking = true)
    {
        int raw = LibC.eventfd(0, LibC.EfdCloexec | (nonBlocking ? LibC.EfdNonblock : 0));
        if (raw < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new KvmException($"eventfd failed: {LibC.Describe(errno)}") { Errno = errno };
        }

        _fd = new FileDescriptorHandle(raw);
    }

    public int Fd => _fd.Fd;

    /// <summary>Adds <paramref name="value"/> to the counter (wakes a reader, or makes an irqfd inject).</summary>
    public void Signal(ulong value = 1)
    {
        ulong v = value;
        if (LibC.write(_fd.Fd, &v, sizeof(ulong)) != sizeof(ulong))
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new KvmException($"eventfd write failed: {LibC.Describe(errno)}") { Errno = errno };
        }
    }

    /// <summary>Reads and resets the counter; false when it is zero (non-blocking mode).</summary>
    public bool TryRead(out ulong value)
    {
        ulong v = 0;
        bool ok = LibC.read(_fd.Fd, &v, sizeof(ulong)) == sizeof(ulong);
        value = ok ? v : 0;
        return ok;
    }

    /// <summary>
    /// Waits with poll(2) until at least one of <paramref name="eventFds"/> has a non-zero counter or
    /// <paramref name="timeoutMilliseconds"/> pass (-1: no limit). Sets <paramref name="readable"/>[i] for each ready
    /// one and returns how many are ready: 0 on timeout or when a signal interrupted the wait.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="readable"/> is shorter than <paramref name="eventFds"/>.</exception>
    public static int WaitAny(ReadOnlySpan<EventFd> eventFds, Span<bool> readable, int timeoutMilliseconds)
    {
        if (readable.Length < eventFds.Length)
        {
            throw new ArgumentException("one result slot per eventfd is needed", nameof(readable));
        }

        var polls = new PollFd[eventFds.Length];
        for (int i = 0; i < polls.Length; i++)
        {
            polls[i] = new PollFd { Fd = eventFds[i].Fd, Events = PollFd.PollIn };
        }

        int n;
        fixed (PollFd* p = polls)
        {
            n = LibC.poll(p, (nuint)polls.Length, timeoutMilliseconds);
        }

        if (n < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == LibC.EIntr)
            {
                readable.Clear();
                return 0;
            }

            throw new KvmException($"poll on {polls.Length} eventfd(s) failed: {LibC.Describe(errno)}") { Errno = errno };
        }

        for (int i = 0; i < polls.Length; i++)
        {
            readable[i] = (polls[i].Revents & PollFd.PollIn) != 0;
        }

        return n;
    }

    public void Dispose() => _fd.Dispose();
}
