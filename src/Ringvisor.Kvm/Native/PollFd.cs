// struct pollfd (poll(2), include/uapi/asm-generic/poll.h): one descriptor to watch and what happened on it.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal struct PollFd
{
    public const int Size = 8;

    /// <summary>POLLIN: data to read (an eventfd with a non-zero counter).</summary>
    public const short PollIn = 0x0001;

    public int Fd;
    public short Events;
    public short Revents;
}
