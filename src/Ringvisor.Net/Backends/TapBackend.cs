// A Linux TAP interface as a NIC backend: /dev/net/tun with IFF_TAP | IFF_NO_PI (Documentation/networking/tuntap.rst),
// so each read or write is exactly one Ethernet frame. Creating a TAP needs CAP_NET_ADMIN, or a persistent TAP
// owned by the user (ip tuntap add dev NAME mode tap user USER).
using System.Runtime.InteropServices;
using System.Text;
using Ringvisor.Core.Net;
using Ringvisor.Net.Ethernet;
using Ringvisor.Net.Native;

namespace Ringvisor.Net.Backends;

public sealed class TapBackend : INetworkBackend
{
    private const string TunDevice = "/dev/net/tun";

    /// <summary>How often the reader wakes to notice Dispose (poll timeout).</summary>
    private const int PollIntervalMs = 200;

    private readonly int _fd;
    private Thread? _reader;
    private volatile bool _stopping;
    private int _disposed;

    private TapBackend(int fd, string interfaceName)
    {
        _fd = fd;
        InterfaceName = interfaceName;
    }

    public string InterfaceName { get; }

    public string Description => $"tap {InterfaceName}";

    public bool LinkUp => !_stopping;

    /// <summary>A TAP's link follows this backend's lifetime; it is never raised while open.</summary>
    public event Action? LinkChanged
    {
        add { }
        remove { }
    }

    /// <summary>Attaches to (or creates) TAP interface <paramref name="interfaceName"/>.</summary>
    /// <exception cref="IOException">The TUN driver is missing, permission is denied, or the name is invalid or busy.</exception>
    public static unsafe TapBackend Open(string interfaceName)
    {
        byte[] name = Encoding.ASCII.GetBytes(interfaceName);
        if (name.Length is 0 or >= NetNative.InterfaceNameSize || interfaceName.Any(c => c is '/' or ' ' or ':' || char.IsControl(c)))
        {
            throw new IOException($"'{interfaceName}' is not a valid network interface name (1-15 characters, no '/', ':' or spaces)");
        }

        int fd = NetNative.Open(TunDevice, NetNative.ORdWr | NetNative.OCloExec, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException(errno == NetNative.ENoEnt
                ? $"cannot open {TunDevice} for TAP '{interfaceName}': the TUN/TAP driver is not available (modprobe tun)"
                : $"cannot open {TunDevice} for TAP '{interfaceName}': {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        // struct ifreq: ifr_name[IFNAMSIZ] then ifr_flags (short) in the union.
        byte* ifr = stackalloc byte[NetNative.IfReqSize];
        new Span<byte>(ifr, NetNative.IfReqSize).Clear();
        name.CopyTo(new Span<byte>(ifr, NetNative.InterfaceNameSize));
        *(short*)(ifr + NetNative.InterfaceNameSize) = NetNative.IffTap | NetNative.IffNoPi;

        // SAFETY: ifr points at a zeroed 40-byte stack buffer, the size of struct ifreq that TUNSETIFF reads and writes.
        if (NetNative.Ioctl(fd, NetNative.TunSetIff, ifr) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            NetNative.Close(fd);
            string why = errno switch
            {
                NetNative.EPerm or NetNative.EAcces => "permission denied (needs CAP_NET_ADMIN, or a persistent TAP owned by this user: ip tuntap add dev NAME mode tap user $USER)",
                NetNative.EBusy => "the interface is in use by another process",
                _ => Marshal.GetPInvokeErrorMessage(errno),
            };
            throw new IOException($"cannot attach TAP interface '{interfaceName}': {why}");
        }

        return new TapBackend(fd, interfaceName);
    }

    public void Start(NetworkFrameReceiver receiver)
    {
        if (_reader is not null)
        {
            throw new InvalidOperationException($"{Description}: already started");
        }

        _reader = new Thread(() => ReadLoop(receiver)) { IsBackground = true, Name = $"{Description} rx" };
        _reader.Start();
    }

    public unsafe bool Send(ReadOnlySpan<byte> frame)
    {
        if (_stopping || frame.Length > EthernetFrame.MaxFrameSize)
        {
            return false;
        }

        fixed (byte* p = frame)
        {
            // SAFETY: p covers frame.Length bytes pinned for the duration of the call.
            nint n = NetNative.Write(_fd, p, (nuint)frame.Length);
            return n == frame.Length;
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping = true;
        if (_reader is not null && Thread.CurrentThread != _reader)
        {
            _reader.Join(TimeSpan.FromSeconds(2));
        }

        NetNative.Close(_fd);
    }

    private unsafe void ReadLoop(NetworkFrameReceiver receiver)
    {
        var buffer = new byte[EthernetFrame.MaxFrameSize];
        var pfd = new NetNative.PollFd { Fd = _fd, Events = NetNative.PollIn };
        while (!_stopping)
        {
            // SAFETY: pfd is a local struct; poll reads and writes exactly one entry.
            int ready = NetNative.Poll(&pfd, 1, PollIntervalMs);
            if (ready <= 0)
            {
                continue;
            }

            nint n;
            fixed (byte* p = buffer)
            {
                // SAFETY: p covers buffer.Length bytes; read writes at most that many.
                n = NetNative.Read(_fd, p, (nuint)buffer.Length);
            }

            if (n > 0)
            {
                receiver(buffer.AsSpan(0, (int)n));
            }
            else if (n < 0 && Marshal.GetLastPInvokeError() is not (NetNative.EAgain or NetNative.EIntr))
            {
                break;
            }
        }
    }
}
