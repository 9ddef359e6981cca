// The modern virtio-over-PCI transport (VIRTIO 1.2 §4.1): vendor-specific capabilities locating the common,
// notification, ISR and device configuration structures, all in one 64-bit memory BAR (BAR 4); the MSI-X table
// and PBA in BAR 1. It implements feature negotiation (VERSION_1 required, FEATURES_OK refused for anything not
// offered), the device status state machine with DEVICE_NEEDS_RESET, reset by writing 0, per-queue configuration
// and MSI-X vectors, config generation, and interrupt delivery by MSI-X or by INTx with the ISR status byte.
using System.Buffers.Binary;
using Ringvisor.Core.Bus;
using Ringvisor.Core.Memory;
using Ringvisor.Devices.Pci;

namespace Ringvisor.Devices.Virtio;

public sealed class VirtioPciTransport : PciFunction, IVirtioQueueNotifier, IDisposable
{
    /// <summary>§4.1.4.3: VIRTIO_MSI_NO_VECTOR.</summary>
    public const ushort NoVector = 0xFFFF;

    /// <summary>§4.1.2: Red Hat's PCI vendor ID; modern device ID = 0x1040 + virtio device ID.</summary>
    public const ushort VirtioVendorId = 0x1AF4;
    public const ushort ModernDeviceIdBase = 0x1040;

    /// <summary>§4.1.2.1: transitional-free devices have revision ID 1 or higher.</summary>
    public const byte ModernRevision = 1;

    public const int MsixBarIndex = 1;
    public const int VirtioBarIndex = 4;

    // Layout of the virtio BAR: one 4 KiB page per structure.
    public const ulong CommonConfigOffset = 0x0000;
    public const ulong IsrOffset = 0x1000;
    public const ulong DeviceConfigOffset = 0x2000;
    public const ulong NotifyOffset = 0x3000;
    public const ulong VirtioBarSize = 0x4000;
    public const uint NotifyOffMultiplier = 4;

    /// <summary>sizeof(struct virtio_pci_common_cfg) up to queue_device (§4.1.4.3); we offer neither notification data nor queue reset.</summary>
    public const int CommonConfigLength = 0x38;

    // §4.1.4 vendor capability cfg_type values.
    private const byte CapCommonCfg = 1;
    private const byte CapNotifyCfg = 2;
    private const byte CapIsrCfg = 3;
    private const byte CapDeviceCfg = 4;
    private const byte CapPciCfg = 5;
    private const byte VendorCapabilityId = 0x09;

    // §4.1.4.3 common configuration field offsets.
    private const int DeviceFeatureSelect = 0x00, DeviceFeature = 0x04, DriverFeatureSelect = 0x08, DriverFeature = 0x0C;
    private const int ConfigMsixVector = 0x10, NumQueues = 0x12, DeviceStatusField = 0x14, ConfigGenerationField = 0x15;
    private const int QueueSelect = 0x16, QueueSize = 0x18, QueueMsixVector = 0x1A, QueueEnable = 0x1C, QueueNotifyOff = 0x1E;
    private const int QueueDesc = 0x20, QueueDriver = 0x28, QueueDevice = 0x30;

    // §4.1.4.5 ISR status bits.
    private const int IsrQueue = 1;
    private const int IsrConfig = 2;

    private const uint MsixPbaOffset = 0x800;
    private const ulong MsixBarSize = 0x1000;

    private readonly object _gate = new();
    private readonly Virtqueue[] _queues;
    private readonly VirtioWorker? _worker;
    private VirtioDeviceStatus _status;
    private uint _deviceFeatureSelect;
    private uint _driverFeatureSelect;
    private ulong _driverFeatures;
    private ushort _configVector = NoVector;
    private ushort _queueSelect;
    private int _configGeneration;
    private int _isr;
    private int _pciCfgCap;
    private long _mmioNotifications;

    /// <param name="device">The device-type logic.</param>
    /// <param name="memory">Guest RAM the device reads rings and buffers from.</param>
    /// <param name="useWorkerThread">Process notifications on a per-device thread (true) or inline on the notifier's thread (tests).</param>
    public VirtioPciTransport(VirtioDevice device, GuestMemory memory, bool useWorkerThread = true)
        : base($"virtio-{device.Name}", VirtioVendorId, (ushort)(ModernDeviceIdBase + (ushort)device.DeviceType), device.PciClassCode,
               ModernRevision, VirtioVendorId, (ushort)device.DeviceType)
    {
        Device = device;
        Memory = memory;
        _queues = new Virtqueue[device.QueueCount];
        for (int i = 0; i < _queues.Length; i++)
        {
            _queues[i] = new Virtqueue(memory, i, device.MaxQueueSize);
        }

        // One vector per queue plus one for configuration changes.
        var msix = AddMsix(device.QueueCount + 1, MsixBarIndex, 0, MsixPbaOffset);
        DefineBar(MsixBarIndex, PciBarKind.Memory32, MsixBarSize, msix);
        DefineBar(VirtioBarIndex, PciBarKind.Memory64, VirtioBarSize, new BarRegion(this));
        AddVendorCapability(CapCommonCfg, CommonConfigOffset, CommonConfigLength, null);
        AddVendorCapability(CapNotifyCfg, NotifyOffset, (uint)device.QueueCount * NotifyOffMultiplier, NotifyOffMultiplier);
        AddVendorCapability(CapIsrCfg, IsrOffset, 1, null);
        AddVendorCapability(CapDeviceCfg, DeviceConfigOffset, (uint)Math.Max(device.ConfigSize, 1), null);
        AddPciCfgCapability();
        device.AttachTransport(this);
        if (useWorkerThread)
        {
            _worker = new VirtioWorker(device.Name, ProcessQueueNow);
        }
    }

    public VirtioDevice Device { get; }

    public GuestMemory Memory { get; }

    public VirtioDeviceStatus Status
    {
        get
        {
            lock (_gate)
            {
                return _status;
            }
        }
    }

    public ulong OfferedFeatures => Device.DeviceFeatures | VirtioFeatures.TransportFeatures;

    /// <summary>What the driver selected (meaningful once FEATURES_OK is set).</summary>
    public ulong DriverFeatures => Volatile.Read(ref _driverFeatures);

    public IReadOnlyList<Virtqueue> Queues => _queues;

    public byte ConfigGeneration => (byte)Volatile.Read(ref _configGeneration);

    /// <summary>
    /// Guest-physical address whose write notifies <paramref name="queueIndex"/> (for a KVM ioeventfd), or null
    /// while the BAR does not decode. Re-query after <see cref="PciBus.BarMappingChanged"/>.
    /// </summary>
    public ulong? GetNotifyAddress(int queueIndex)
    {
        if ((uint)queueIndex >= (uint)_queues.Length || (Config.Command & PciConfigSpace.CommandMemoryEnable) == 0)
        {
            return null;
        }

        ulong? bar = GetBarAddress(VirtioBarIndex);
        return bar is null or 0 ? null : bar + NotifyOffset + ((ulong)queueIndex * NotifyOffMultiplier);
    }

    /// <summary>
    /// Notify-region writes that reached the transport as MMIO accesses (under kvm with ioeventfds registered these
    /// stay in the kernel and are not counted here; <see cref="VirtioStatistics.Notifications"/> counts both paths).
    /// </summary>
    public long MmioNotifications => Interlocked.Read(ref _mmioNotifications);

    /// <summary>A driver notification for <paramref name="queueIndex"/> (MMIO write or ioeventfd).</summary>
    public void NotifyQueue(int queueIndex)
    {
        if ((uint)queueIndex >= (uint)_queues.Length)
        {
            return;
        }

        Device.Statistics.CountNotification();
        RequestProcessing(queueIndex);
    }

    /// <summary>Asks for <paramref name="queueIndex"/> to be processed (device-initiated, e.g. a frame arrived).</summary>
    public void RequestProcessing(int queueIndex)
    {
        if (_worker is not null)
        {
            _worker.Post(queueIndex);
        }
        else
        {
            ProcessQueueNow(queueIndex);
        }
    }

    /// <summary>The device's configuration changed (e.g. link status): bump the generation and interrupt (§4.1.4.3.1).</summary>
    public void ConfigChanged()
    {
        lock (_gate)
        {
            Interlocked.Increment(ref _configGeneration);
            if ((_status & VirtioDeviceStatus.DriverOk) != 0)
            {
                SignalConfigLocked();
            }
        }
    }

    /// <summary>
    /// The device cannot go on (§2.1.2): sets DEVICE_NEEDS_RESET and tells the driver with a configuration
    /// interrupt. Processing stops until the driver resets the device.
    /// </summary>
    public void SetNeedsReset(string reason)
    {
        lock (_gate)
        {
            SetNeedsResetLocked(reason);
        }
    }

    /// <summary>Saves the transport, PCI and queue state; take it while the vCPUs are paused.</summary>
    public VirtioTransportState Save()
    {
        lock (_gate)
        {
            var queues = new VirtqueueState[_queues.Length];
            for (int i = 0; i < queues.Length; i++)
            {
                queues[i] = _queues[i].Save();
            }

            return new VirtioTransportState(VirtioTransportState.CurrentVersion, SavePciState(), _status, _deviceFeatureSelect,
                _driverFeatureSelect, _driverFeatures, _configVector, _queueSelect, Volatile.Read(ref _configGeneration),
                Volatile.Read(ref _isr), queues);
        }
    }

    /// <summary>
    /// Restores <see cref="Save"/> into a transport for the same device type and queue count (the machine then
    /// calls <see cref="PciBus.RemapAll"/>). A running device is re-activated and its queues are looked at again.
    /// </summary>
    /// <exception cref="ArgumentException">Version, device type or queue count differ.</exception>
    public void Restore(VirtioTransportState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Version != VirtioTransportState.CurrentVersion)
        {
            throw new ArgumentException($"{Name}: virtio state version {state.Version} is not supported (expected {VirtioTransportState.CurrentVersion})");
        }

        if (state.Queues.Count != _queues.Length)
        {
            throw new ArgumentException($"{Name}: saved state has {state.Queues.Count} queues, this device has {_queues.Length}");
        }

        lock (_gate)
        {
            ResetLocked();
            RestorePciState(state.Pci);
            _status = state.Status;
            _deviceFeatureSelect = state.DeviceFeatureSelect;
            _driverFeatureSelect = state.DriverFeatureSelect;
            Volatile.Write(ref _driverFeatures, state.DriverFeatures);
            _configVector = state.ConfigVector;
            _queueSelect = state.QueueSelect;
            Volatile.Write(ref _configGeneration, state.ConfigGeneration);
            Volatile.Write(ref _isr, state.Isr);
            for (int i = 0; i < _queues.Length; i++)
            {
                _queues[i].Restore(state.Queues[i]);
            }

            if ((_status & VirtioDeviceStatus.DriverOk) != 0)
            {
                Device.Activate();
            }
        }

        for (int i = 0; i < _queues.Length; i++)
        {
            RequestProcessing(i);
        }
    }

    /// <summary>Stops the worker thread, then disposes the device (closing its image or backend).</summary>
    public void Dispose()
    {
        _worker?.Dispose();
        (Device as IDisposable)?.Dispose();
    }

    private void SetNeedsResetLocked(string reason)
    {
        if ((_status & VirtioDeviceStatus.DeviceNeedsReset) != 0)
        {
            return;
        }

        _status |= VirtioDeviceStatus.DeviceNeedsReset;
        Device.Statistics.CountNeedsReset();
        Device.Statistics.CountRingError(reason);
        if ((_status & VirtioDeviceStatus.DriverOk) != 0)
        {
            Interlocked.Increment(ref _configGeneration);
            SignalConfigLocked();
        }
    }

    private void ProcessQueueNow(int queueIndex)
    {
        lock (_gate)
        {
            const VirtioDeviceStatus stopped = VirtioDeviceStatus.DeviceNeedsReset | VirtioDeviceStatus.Failed;
            if ((_status & VirtioDeviceStatus.DriverOk) == 0 || (_status & stopped) != 0)
            {
                return;
            }

            var q = _queues[queueIndex];
            if (!q.IsReady)
            {
                return;
            }

            try
            {
                Device.ProcessQueue(q);
            }
            catch (Exception e)
            {
                // A host bug must not take the vCPU or the worker down; the device stops until reset.
                Device.Statistics.CountInternalError($"{Device.Name} queue {queueIndex}: {e.GetType().Name}: {e.Message}");
                q.Fail(VirtqueueError.BadRequest);
            }

            if (q.IsBroken)
            {
                SetNeedsResetLocked($"{Device.Name} queue {queueIndex}: {q.Error}");
                return;
            }

            if (q.ShouldNotify())
            {
                SignalQueueLocked(q);
            }
        }
    }

    private void SignalQueueLocked(Virtqueue q)
    {
        Device.Statistics.CountInterrupt();
        if (Msix is { Enabled: true } msix)
        {
            if (q.MsixVector != NoVector)
            {
                msix.Signal(q.MsixVector);
            }

            return;
        }

        Interlocked.Or(ref _isr, IsrQueue);
        SetIntx(true);
    }

    private void SignalConfigLocked()
    {
        Device.Statistics.CountInterrupt();
        if (Msix is { Enabled: true } msix)
        {
            if (_configVector != NoVector)
            {
                msix.Signal(_configVector);
            }

            return;
        }

        Interlocked.Or(ref _isr, IsrConfig);
        SetIntx(true);
    }

    private void AddVendorCapability(byte type, ulong offset, uint length, uint? notifyMultiplier)
    {
        // §4.1.4: struct virtio_pci_cap after cap_vndr/cap_next: cap_len, cfg_type, bar, id, padding[2], offset, length.
        Span<byte> body = stackalloc byte[notifyMultiplier is null ? 14 : 18];
        body[0] = (byte)(body.Length + 2);
        body[1] = type;
        body[2] = VirtioBarIndex;
        BinaryPrimitives.WriteUInt32LittleEndian(body[6..], (uint)offset);
        BinaryPrimitives.WriteUInt32LittleEndian(body[10..], length);
        if (notifyMultiplier is { } m)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(body[14..], m);
        }

        Config.AddCapability(VendorCapabilityId, body);
    }

    /// <summary>
    /// §4.1.4.9 VIRTIO_PCI_CAP_PCI_CFG: a window through configuration space into the BARs. The driver writes
    /// cap.bar, cap.offset and cap.length (1, 2 or 4), then reads or writes pci_cfg_data.
    /// </summary>
    private void AddPciCfgCapability()
    {
        Span<byte> body = stackalloc byte[18];
        body.Clear();
        body[0] = 20; // cap_len: struct virtio_pci_cfg_cap
        body[1] = CapPciCfg;
        _pciCfgCap = Config.AddCapability(VendorCapabilityId, body);
        Config.SetWritable(_pciCfgCap + 4, 1, 0xFF);          // cap.bar
        Config.SetWritable(_pciCfgCap + 8, 4, 0xFFFF_FFFF);   // cap.offset
        Config.SetWritable(_pciCfgCap + 12, 4, 0xFFFF_FFFF);  // cap.length
        Config.SetWritable(_pciCfgCap + 16, 4, 0xFFFF_FFFF);  // pci_cfg_data
    }

    private bool TryGetPciCfgWindow(out ulong offset, out int length)
    {
        int bar = (int)(Config.ReadU32(_pciCfgCap + 4) & 0xFF);
        offset = Config.ReadU32(_pciCfgCap + 8);
        length = (int)Config.ReadU32(_pciCfgCap + 12);

        // §4.1.4.9.1: only 1, 2 or 4 bytes, aligned to the length, inside the BAR.
        return bar == VirtioBarIndex && length is 1 or 2 or 4 && offset % (ulong)length == 0 && offset + (ulong)length <= VirtioBarSize;
    }

    protected override void OnConfigReading(int offset, int length)
    {
        if (offset < _pciCfgCap + 20 && offset + length > _pciCfgCap + 16 && TryGetPciCfgWindow(out ulong at, out int n))
        {
            Span<byte> data = stackalloc byte[4];
            data.Clear();
            new BarRegion(this).Read(at, data[..n]);
            Config.SetU32(_pciCfgCap + 16, BinaryPrimitives.ReadUInt32LittleEndian(data));
        }
    }

    protected override void OnConfigWritten(int offset, int length)
    {
        if (offset < _pciCfgCap + 20 && offset + length > _pciCfgCap + 16 && TryGetPciCfgWindow(out ulong at, out int n))
        {
            Span<byte> data = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(data, Config.ReadU32(_pciCfgCap + 16));
            new BarRegion(this).Write(at, data[..n]);
        }
    }

    private void ResetLocked()
    {
        Device.Reset();
        foreach (var q in _queues)
        {
            q.Reset();
        }

        _status = VirtioDeviceStatus.None;
        _deviceFeatureSelect = _driverFeatureSelect = 0;
        Volatile.Write(ref _driverFeatures, 0);
        _configVector = NoVector;
        _queueSelect = 0;
        Interlocked.Exchange(ref _isr, 0);
        SetIntx(false);
    }

    private void BuildCommon(Span<byte> c)
    {
        c.Clear();
        ulong offered = OfferedFeatures;
        BinaryPrimitives.WriteUInt32LittleEndian(c[DeviceFeatureSelect..], _deviceFeatureSelect);
        uint dword = _deviceFeatureSelect switch { 0 => (uint)offered, 1 => (uint)(offered >> 32), _ => 0 };
        BinaryPrimitives.WriteUInt32LittleEndian(c[DeviceFeature..], dword);
        BinaryPrimitives.WriteUInt32LittleEndian(c[DriverFeatureSelect..], _driverFeatureSelect);
        uint drv = _driverFeatureSelect switch { 0 => (uint)_driverFeatures, 1 => (uint)(_driverFeatures >> 32), _ => 0 };
        BinaryPrimitives.WriteUInt32LittleEndian(c[DriverFeature..], drv);
        BinaryPrimitives.WriteUInt16LittleEndian(c[ConfigMsixVector..], _configVector);
        BinaryPrimitives.WriteUInt16LittleEndian(c[NumQueues..], (ushort)_queues.Length);
        c[DeviceStatusField] = (byte)_status;
        c[ConfigGenerationField] = ConfigGeneration;
        BinaryPrimitives.WriteUInt16LittleEndian(c[QueueSelect..], _queueSelect);
        if (_queueSelect < _queues.Length)
        {
            var q = _queues[_queueSelect];
            BinaryPrimitives.WriteUInt16LittleEndian(c[QueueSize..], q.Size);
            BinaryPrimitives.WriteUInt16LittleEndian(c[QueueMsixVector..], q.MsixVector);
            BinaryPrimitives.WriteUInt16LittleEndian(c[QueueEnable..], q.Enabled ? (ushort)1 : (ushort)0);
            BinaryPrimitives.WriteUInt16LittleEndian(c[QueueNotifyOff..], _queueSelect);
            BinaryPrimitives.WriteUInt64LittleEndian(c[QueueDesc..], q.DescriptorTable);
            BinaryPrimitives.WriteUInt64LittleEndian(c[QueueDriver..], q.DriverArea);
            BinaryPrimitives.WriteUInt64LittleEndian(c[QueueDevice..], q.DeviceArea);
        }
        else
        {
            // §4.1.4.3: a queue that does not exist reads size 0 and a NO_VECTOR vector.
            BinaryPrimitives.WriteUInt16LittleEndian(c[QueueMsixVector..], NoVector);
        }
    }

    private void ReadCommon(ulong offset, Span<byte> data)
    {
        Span<byte> c = stackalloc byte[CommonConfigLength];
        lock (_gate)
        {
            BuildCommon(c);
        }

        CopyOut(c, offset, data);
    }

    private void WriteCommon(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset >= CommonConfigLength)
        {
            return;
        }

        int start = (int)offset;
        int end = Math.Min(CommonConfigLength, start + data.Length);
        Span<byte> c = stackalloc byte[CommonConfigLength];
        List<int>? kick = null;
        lock (_gate)
        {
            BuildCommon(c);
            data[..(end - start)].CopyTo(c[start..]);
            bool Covers(int field, int width) => start < field + width && field < end;

            if (Covers(DeviceFeatureSelect, 4))
            {
                _deviceFeatureSelect = BinaryPrimitives.ReadUInt32LittleEndian(c[DeviceFeatureSelect..]);
            }

            if (Covers(DriverFeatureSelect, 4))
            {
                _driverFeatureSelect = BinaryPrimitives.ReadUInt32LittleEndian(c[DriverFeatureSelect..]);
            }

            if (Covers(DriverFeature, 4) && (_status & VirtioDeviceStatus.FeaturesOk) == 0 && _driverFeatureSelect < 2)
            {
                // §3.1.1: features are fixed once FEATURES_OK is set; later writes are ignored.
                ulong v = BinaryPrimitives.ReadUInt32LittleEndian(c[DriverFeature..]);
                int shift = (int)_driverFeatureSelect * 32;
                Volatile.Write(ref _driverFeatures, (_driverFeatures & ~(0xFFFF_FFFFUL << shift)) | (v << shift));
            }

            if (Covers(ConfigMsixVector, 2))
            {
                _configVector = ValidVector(BinaryPrimitives.ReadUInt16LittleEndian(c[ConfigMsixVector..]));
            }

            if (Covers(DeviceStatusField, 1))
            {
                WriteStatusLocked(c[DeviceStatusField], ref kick);
            }

            if (Covers(QueueSelect, 2))
            {
                _queueSelect = BinaryPrimitives.ReadUInt16LittleEndian(c[QueueSelect..]);
            }

            if (_queueSelect < _queues.Length)
            {
                WriteQueueFieldsLocked(_queues[_queueSelect], c, Covers);
            }
        }

        if (kick is not null)
        {
            foreach (int q in kick)
            {
                RequestProcessing(q);
            }
        }
    }

    private void WriteQueueFieldsLocked(Virtqueue q, ReadOnlySpan<byte> c, Func<int, int, bool> covers)
    {
        if (covers(QueueMsixVector, 2))
        {
            // The vector may change while the queue runs (Linux sets it after enabling on some paths).
            q.MsixVector = ValidVector(BinaryPrimitives.ReadUInt16LittleEndian(c[QueueMsixVector..]));
        }

        // §4.1.4.3.2: the driver must not change an enabled queue's configuration; such writes are ignored.
        if (q.Enabled)
        {
            return;
        }

        if (covers(QueueSize, 2))
        {
            q.Size = BinaryPrimitives.ReadUInt16LittleEndian(c[QueueSize..]);
        }

        if (covers(QueueDesc, 8))
        {
            q.DescriptorTable = BinaryPrimitives.ReadUInt64LittleEndian(c[QueueDesc..]);
        }

        if (covers(QueueDriver, 8))
        {
            q.DriverArea = BinaryPrimitives.ReadUInt64LittleEndian(c[QueueDriver..]);
        }

        if (covers(QueueDevice, 8))
        {
            q.DeviceArea = BinaryPrimitives.ReadUInt64LittleEndian(c[QueueDevice..]);
        }

        if (covers(QueueEnable, 2) && BinaryPrimitives.ReadUInt16LittleEndian(c[QueueEnable..]) == 1)
        {
            ApplyRingFeatures(q);
            var error = q.Enable();
            if (error != VirtqueueError.None)
            {
                SetNeedsResetLocked($"{Device.Name} queue {q.Index}: {error}");
            }
        }
    }

    private void WriteStatusLocked(byte value, ref List<int>? kick)
    {
        if (value == 0)
        {
            ResetLocked();
            return;
        }

        var old = _status;
        var requested = (VirtioDeviceStatus)value & ~VirtioDeviceStatus.DeviceNeedsReset;
        if ((requested & VirtioDeviceStatus.FeaturesOk) != 0 && (old & VirtioDeviceStatus.FeaturesOk) == 0 && !FeaturesAcceptable())
        {
            // §3.1.1 step 6: the driver re-reads status; FEATURES_OK not set means the features were refused.
            requested &= ~VirtioDeviceStatus.FeaturesOk;
        }

        if ((requested & VirtioDeviceStatus.DriverOk) != 0 && (requested & VirtioDeviceStatus.FeaturesOk) == 0)
        {
            // DRIVER_OK without negotiated features: the device stays inert.
            requested &= ~VirtioDeviceStatus.DriverOk;
            Device.Statistics.CountFeatureRejection($"{Device.Name}: DRIVER_OK without FEATURES_OK");
        }

        _status = requested | (old & VirtioDeviceStatus.DeviceNeedsReset);
        if ((requested & VirtioDeviceStatus.FeaturesOk) != 0 && (old & VirtioDeviceStatus.FeaturesOk) == 0)
        {
            foreach (var q in _queues)
            {
                ApplyRingFeatures(q);
            }
        }

        if ((requested & VirtioDeviceStatus.DriverOk) != 0 && (old & VirtioDeviceStatus.DriverOk) == 0)
        {
            Device.Activate();

            // Buffers the driver made available before DRIVER_OK (rx queues) are looked at now.
            kick = [];
            for (int i = 0; i < _queues.Length; i++)
            {
                kick.Add(i);
            }
        }
    }

    private bool FeaturesAcceptable()
    {
        ulong f = _driverFeatures;
        ulong unknown = f & ~OfferedFeatures;
        if (unknown != 0)
        {
            Device.Statistics.CountFeatureRejection($"{Device.Name}: driver accepted features not offered: 0x{unknown:X}");
            return false;
        }

        if ((f & VirtioFeatures.Bit(VirtioFeatures.Version1)) == 0)
        {
            Device.Statistics.CountFeatureRejection($"{Device.Name}: VIRTIO_F_VERSION_1 not accepted (legacy drivers are not supported)");
            return false;
        }

        if (!Device.ValidateFeatures(f))
        {
            Device.Statistics.CountFeatureRejection($"{Device.Name}: feature combination 0x{f:X} refused by the device");
            return false;
        }

        return true;
    }

    private void ApplyRingFeatures(Virtqueue q)
    {
        q.IndirectEnabled = (_driverFeatures & VirtioFeatures.Bit(VirtioFeatures.IndirectDescriptors)) != 0;
        q.EventIndexEnabled = (_driverFeatures & VirtioFeatures.Bit(VirtioFeatures.EventIndex)) != 0;
    }

    private ushort ValidVector(ushort v) =>
        v != NoVector && Msix is { } m && v < m.VectorCount ? v : NoVector; // §4.1.5.1.2: an unusable vector reads back NO_VECTOR

    private byte ReadIsr()
    {
        // §4.1.4.5.1: reading the ISR status resets it to 0 and deasserts the interrupt.
        int v = Interlocked.Exchange(ref _isr, 0);
        SetIntx(false);
        return (byte)v;
    }

    private void ReadDeviceConfig(ulong offset, Span<byte> data)
    {
        if (offset >= (ulong)Device.ConfigSize || (ulong)data.Length > (ulong)Device.ConfigSize - offset)
        {
            data.Clear();
            return;
        }

        lock (_gate)
        {
            Device.ReadConfig((int)offset, data);
        }
    }

    private void WriteDeviceConfig(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset >= (ulong)Device.ConfigSize || (ulong)data.Length > (ulong)Device.ConfigSize - offset)
        {
            return;
        }

        lock (_gate)
        {
            Device.WriteConfig((int)offset, data);
        }
    }

    private static void CopyOut(ReadOnlySpan<byte> source, ulong offset, Span<byte> data)
    {
        data.Clear();
        if (offset < (ulong)source.Length)
        {
            var s = source[(int)offset..];
            s[..Math.Min(s.Length, data.Length)].CopyTo(data);
        }
    }

    /// <summary>The virtio BAR: dispatches to the four structures by page.</summary>
    private sealed class BarRegion(VirtioPciTransport t) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data)
        {
            switch (offset & ~0xFFFUL)
            {
                case CommonConfigOffset:
                    t.ReadCommon(offset, data);
                    break;
                case IsrOffset:
                    data.Clear();
                    if (offset == IsrOffset && data.Length >= 1)
                    {
                        data[0] = t.ReadIsr();
                    }

                    break;
                case DeviceConfigOffset:
                    t.ReadDeviceConfig(offset - DeviceConfigOffset, data);
                    break;
                default:
                    data.Clear();
                    break;
            }
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            switch (offset & ~0xFFFUL)
            {
                case CommonConfigOffset:
                    t.WriteCommon(offset, data);
                    break;
                case DeviceConfigOffset:
                    t.WriteDeviceConfig(offset - DeviceConfigOffset, data);
                    break;
                case NotifyOffset:
                    ulong rel = offset - NotifyOffset;
                    if (rel % NotifyOffMultiplier == 0)
                    {
                        Interlocked.Increment(ref t._mmioNotifications);
                        t.NotifyQueue((int)(rel / NotifyOffMultiplier));
                    }

                    break;
            }
        }
    }
}
