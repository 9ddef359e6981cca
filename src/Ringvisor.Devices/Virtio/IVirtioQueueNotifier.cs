namespace Ringvisor.Devices.Virtio;

/// <summary>
/// Where a queue notification ("the driver added buffers to queue N") is delivered. The transport's notify region
/// calls it from the vCPU thread on an MMIO write; under KVM the machine may instead register an ioeventfd for
/// the address from <see cref="VirtioPciTransport.GetNotifyAddress"/> and call it from the thread that reads the
/// eventfd. Implementations return quickly: processing runs on the device's worker thread when it has one.
/// </summary>
public interface IVirtioQueueNotifier
{
    void NotifyQueue(int queueIndex);
}
