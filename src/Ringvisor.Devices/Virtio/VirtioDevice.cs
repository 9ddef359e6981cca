// The device-type half of a virtio device (VIRTIO 1.2 §5): its ID, feature bits, configuration layout, queues
// and request processing. The transport (VirtioPciTransport) owns status, feature negotiation, the queues'
// configuration and interrupts, and calls in here under its lock.
using Ringvisor.Core.Memory;

namespace Ringvisor.Devices.Virtio;

public abstract class VirtioDevice
{
    private VirtioPciTransport? _transport;

    protected VirtioDevice(string name, VirtioDeviceType type, int queueCount, ushort maxQueueSize)
    {
        if (queueCount is < 1 or > 64)
        {
            throw new ArgumentOutOfRangeException(nameof(queueCount), queueCount, "virtio devices here have 1..64 queues");
        }

        if (maxQueueSize == 0 || maxQueueSize > Virtqueue.AbsoluteMaxSize || (maxQueueSize & (maxQueueSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxQueueSize), maxQueueSize, "queue size must be a power of two up to 32768");
        }

        Name = name;
        DeviceType = type;
        QueueCount = queueCount;
        MaxQueueSize = maxQueueSize;
    }

    public string Name { get; }

    public VirtioDeviceType DeviceType { get; }

    public int QueueCount { get; }

    public ushort MaxQueueSize { get; }

    public VirtioStatistics Statistics { get; } = new();

    /// <summary>Device-type feature bits offered (the transport adds VERSION_1, INDIRECT_DESC and EVENT_IDX).</summary>
    public abstract ulong DeviceFeatures { get; }

    /// <summary>Bytes of device-specific configuration (§4.1.4.6).</summary>
    public abstract int ConfigSize { get; }

    /// <summary>PCI class code for the function (base class, subclass, programming interface).</summary>
    public abstract uint PciClassCode { get; }

    /// <summary>Whether a transport has been attached (events from backends may arrive before).</summary>
    protected bool IsAttached => _transport is not null;

    /// <summary>The transport this device is plugged into.</summary>
    protected VirtioPciTransport Transport => _transport ?? throw new InvalidOperationException($"virtio device '{Name}' has no transport");

    protected GuestMemory Memory => Transport.Memory;

    /// <summary>The features the driver accepted (valid once FEATURES_OK is set).</summary>
    protected ulong NegotiatedFeatures => Transport.DriverFeatures;

    protected bool HasFeature(int bit) => (NegotiatedFeatures & (1UL << bit)) != 0;

    /// <summary>Device configuration read; <paramref name="offset"/> + length is within <see cref="ConfigSize"/>.</summary>
    public abstract void ReadConfig(int offset, Span<byte> data);

    /// <summary>Device configuration write (most fields are read-only).</summary>
    public virtual void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
    }

    /// <summary>Processes what is available on <paramref name="queue"/>; called under the transport lock.</summary>
    protected internal abstract void ProcessQueue(Virtqueue queue);

    /// <summary>The driver set DRIVER_OK: the device may start using its queues.</summary>
    protected internal virtual void Activate()
    {
    }

    /// <summary>The driver reset the device (wrote 0 to status): drop in-flight state.</summary>
    protected internal virtual void Reset()
    {
    }

    /// <summary>Whether the driver's feature selection is acceptable beyond "a subset of what was offered".</summary>
    protected internal virtual bool ValidateFeatures(ulong features) => true;

    internal void AttachTransport(VirtioPciTransport transport)
    {
        if (_transport is not null)
        {
            throw new InvalidOperationException($"virtio device '{Name}' is already attached");
        }

        _transport = transport;
    }

    /// <summary>Completes a chain and counts it.</summary>
    protected void Complete(Virtqueue queue, DescriptorChain chain, uint written)
    {
        queue.PushUsed(chain.Head, written);
        Statistics.CountRequest();
    }
}
