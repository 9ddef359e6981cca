// Virtio queue notifications under the kvm engine without a trip to user space per doorbell: one KVM ioeventfd per
// queue at its notify address (VirtioPciTransport.GetNotifyAddress, a 2-byte write of any value; VIRTIO 1.2 §4.1.4.4),
// so the guest's write only signals an eventfd inside the kernel (api.rst §4.59 KVM_IOEVENTFD). One thread per VM
// polls every eventfd and calls VirtioPciTransport.NotifyQueue, which hands the work to the device's worker.
//
// Every queue of a device gets its eventfd when the device is added; the eventfds are registered whenever the
// virtio BAR decodes and re-registered from PciBus.BarMappingChanged when the guest moves the BAR or toggles memory
// decode. A notification for a queue that is not enabled is harmless (the transport ignores it), so registration
// does not follow queue enable/reset. Where KVM refuses a registration (old kernel, no free io bus slot) the
// notify window stays on the MMIO bus and the write reaches the transport by an MMIO exit, as under the bt engine.
using Ringvisor.Devices.Pci;
using Ringvisor.Devices.Virtio;
using Ringvisor.Kvm;

namespace Ringvisor.Machine;

public sealed class KvmVirtioNotifier : IDisposable
{
    /// <summary>Width of the notify write Linux's virtio_pci_modern makes (iowrite16 of the queue index).</summary>
    public const uint NotifyWriteLength = 2;

    private readonly object _gate = new();
    private readonly KvmEngine _engine;
    private readonly PciBus _pci;
    private readonly Action<string> _log;
    private readonly List<Doorbell> _doorbells = [];
    private readonly Dictionary<IPciFunction, VirtioPciTransport> _transports = [];
    private readonly EventFd _stop = new();
    private Thread? _thread;
    private bool _loggedFailure;
    private bool _disposed;
    private long _delivered;
    private long _registrations;
    private long _failedRegistrations;

    /// <param name="engine">The VM's kvm engine (owns KVM_IOEVENTFD).</param>
    /// <param name="pci">The bus whose BAR moves trigger re-registration.</param>
    /// <param name="log">Receives one line the first time a registration fails (the MMIO path is used instead).</param>
    public KvmVirtioNotifier(KvmEngine engine, PciBus pci, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(pci);
        _engine = engine;
        _pci = pci;
        _log = log ?? (line => Console.Error.WriteLine(line));
        _pci.BarMappingChanged += OnBarMappingChanged;
    }

    /// <summary>Notifications delivered through an eventfd (each read may cover several guest writes).</summary>
    public long DeliveredNotifications => Interlocked.Read(ref _delivered);

    /// <summary>Successful KVM_IOEVENTFD assignments so far (re-registrations after BAR moves count again).</summary>
    public long Registrations => Interlocked.Read(ref _registrations);

    /// <summary>Assignments KVM refused (those queues fall back to MMIO exits).</summary>
    public long FailedRegistrations => Interlocked.Read(ref _failedRegistrations);

    /// <summary>
    /// The guest-physical address the eventfd of queue <paramref name="queue"/> of <paramref name="transport"/> is
    /// registered at now, or null (BAR not decoding, registration refused, or not tracked).
    /// </summary>
    public ulong? RegisteredAddress(VirtioPciTransport transport, int queue)
    {
        lock (_gate)
        {
            foreach (var d in _doorbells)
            {
                if (ReferenceEquals(d.Transport, transport) && d.Queue == queue)
                {
                    return d.Address;
                }
            }

            return null;
        }
    }

    /// <summary>Gives every queue of <paramref name="transport"/> (already on the bus) an eventfd and registers it.</summary>
    public void Add(VirtioPciTransport transport)
    {
        ArgumentNullException.ThrowIfNull(transport);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_thread is not null)
            {
                throw new InvalidOperationException("devices must be added before the notifier starts");
            }

            _transports.Add(transport, transport);
            for (int q = 0; q < transport.Queues.Count; q++)
            {
                _doorbells.Add(new Doorbell(transport, q, new EventFd()));
            }

            RebindLocked(transport);
        }
    }

    /// <summary>Starts the thread that turns eventfd signals into queue notifications.</summary>
    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_thread is not null)
            {
                return;
            }

            _thread = new Thread(Run) { IsBackground = true, Name = "virtio ioeventfd" };
            _thread.Start();
        }
    }

    /// <summary>Unregisters every eventfd (later notify writes exit to the MMIO bus), stops the thread and closes the eventfds.</summary>
    public void Dispose()
    {
        Thread? thread;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _pci.BarMappingChanged -= OnBarMappingChanged;
            foreach (var d in _doorbells)
            {
                UnregisterLocked(d);
            }

            thread = _thread;
        }

        _stop.Signal();
        thread?.Join();
        foreach (var d in _doorbells)
        {
            d.EventFd.Dispose();
        }

        _stop.Dispose();
    }

    private void OnBarMappingChanged(IPciFunction function, int bar, ulong? address)
    {
        if (bar != VirtioPciTransport.VirtioBarIndex)
        {
            return;
        }

        lock (_gate)
        {
            if (!_disposed && _transports.TryGetValue(function, out var transport))
            {
                RebindLocked(transport);
            }
        }
    }

    /// <summary>Moves the transport's eventfds to where its notify addresses are now (or unregisters them).</summary>
    private void RebindLocked(VirtioPciTransport transport)
    {
        // Only where the bus really decodes the BAR: a BAR the guest placed over another window stays unmapped,
        // and an eventfd there would swallow that other device's writes.
        bool mapped = _pci.GetMappedAddress(transport, VirtioPciTransport.VirtioBarIndex) is not null;
        foreach (var d in _doorbells)
        {
            if (!ReferenceEquals(d.Transport, transport))
            {
                continue;
            }

            ulong? wanted = mapped ? transport.GetNotifyAddress(d.Queue) : null;
            if (d.Address == wanted)
            {
                continue;
            }

            UnregisterLocked(d);
            if (wanted is not { } address)
            {
                continue;
            }

            try
            {
                _engine.RegisterIoEventfd(address, NotifyWriteLength, d.EventFd.Fd, isPio: false);
                d.Address = address;
                Interlocked.Increment(ref _registrations);
            }
            catch (KvmException e)
            {
                Interlocked.Increment(ref _failedRegistrations);
                if (!_loggedFailure)
                {
                    _loggedFailure = true;
                    _log($"ringvisor: virtio notifications use MMIO exits ({transport.Name} queue {d.Queue} at 0x{address:X}: {e.Message})");
                }
            }
        }
    }

    private void UnregisterLocked(Doorbell d)
    {
        if (d.Address is not { } address)
        {
            return;
        }

        d.Address = null;
        try
        {
            _engine.UnregisterIoEventfd(address, NotifyWriteLength, d.EventFd.Fd, isPio: false);
        }
        catch (KvmException)
        {
            // The VM is going away or KVM forgot the entry: either way nothing signals this eventfd any more.
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void Run()
    {
        // The set of eventfds is fixed once the thread runs (Add refuses after Start); only registrations move.
        Doorbell[] doorbells;
        lock (_gate)
        {
            doorbells = [.. _doorbells];
        }

        var fds = new EventFd[doorbells.Length + 1];
        for (int i = 0; i < doorbells.Length; i++)
        {
            fds[i] = doorbells[i].EventFd;
        }

        fds[^1] = _stop;
        var ready = new bool[fds.Length];
        while (true)
        {
            if (EventFd.WaitAny(fds, ready, -1) == 0)
            {
                continue;
            }

            if (ready[^1])
            {
                return;
            }

            for (int i = 0; i < doorbells.Length; i++)
            {
                if (ready[i] && doorbells[i].EventFd.TryRead(out _))
                {
                    Interlocked.Increment(ref _delivered);
                    doorbells[i].Transport.NotifyQueue(doorbells[i].Queue);
                }
            }
        }
    }

    private sealed class Doorbell(VirtioPciTransport transport, int queue, EventFd eventFd)
    {
        public VirtioPciTransport Transport { get; } = transport;

        public int Queue { get; } = queue;

        public EventFd EventFd { get; } = eventFd;

        /// <summary>Where the eventfd is registered now (guarded by the notifier's lock).</summary>
        public ulong? Address { get; set; }
    }
}
