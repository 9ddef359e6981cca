namespace Ringvisor.Devices.Virtio;

/// <summary>Per-device counters, readable from any thread. Guest mistakes show here (and in the device status).</summary>
public sealed class VirtioStatistics
{
    private long _notifications;
    private long _requests;
    private long _requestErrors;
    private long _ringErrors;
    private long _needsReset;
    private long _interrupts;
    private long _featureRejections;
    private long _internalErrors;
    private string? _lastError;

    /// <summary>Queue notifications received (MMIO writes or eventfd kicks).</summary>
    public long Notifications => Interlocked.Read(ref _notifications);

    /// <summary>Chains completed to the used ring.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Requests that failed with the device's own error status (VIRTIO_BLK_S_IOERR, ...), or frames dropped for errors.</summary>
    public long RequestErrors => Interlocked.Read(ref _requestErrors);

    /// <summary>Ring or descriptor rule violations that broke a queue.</summary>
    public long RingErrors => Interlocked.Read(ref _ringErrors);

    /// <summary>Times the device entered DEVICE_NEEDS_RESET.</summary>
    public long NeedsResetEvents => Interlocked.Read(ref _needsReset);

    /// <summary>Interrupts raised (MSI-X messages or INTx assertions).</summary>
    public long Interrupts => Interlocked.Read(ref _interrupts);

    /// <summary>FEATURES_OK refused (unknown features, or VERSION_1 missing).</summary>
    public long FeatureRejections => Interlocked.Read(ref _featureRejections);

    /// <summary>Host exceptions caught at the device boundary (a Ringvisor bug; the device needs reset).</summary>
    public long InternalErrors => Interlocked.Read(ref _internalErrors);

    /// <summary>The most recent error, for logs and the monitor.</summary>
    public string? LastError => Volatile.Read(ref _lastError);

    internal void CountNotification() => Interlocked.Increment(ref _notifications);

    internal void CountRequest() => Interlocked.Increment(ref _requests);

    internal void CountInterrupt() => Interlocked.Increment(ref _interrupts);

    internal void CountRequestError(string what)
    {
        Interlocked.Increment(ref _requestErrors);
        Volatile.Write(ref _lastError, what);
    }

    internal void CountRingError(string what)
    {
        Interlocked.Increment(ref _ringErrors);
        Volatile.Write(ref _lastError, what);
    }

    internal void CountNeedsReset() => Interlocked.Increment(ref _needsReset);

    internal void CountFeatureRejection(string what)
    {
        Interlocked.Increment(ref _featureRejections);
        Volatile.Write(ref _lastError, what);
    }

    internal void CountInternalError(string what)
    {
        Interlocked.Increment(ref _internalErrors);
        Volatile.Write(ref _lastError, what);
    }
}
