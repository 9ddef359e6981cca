// Any virtio device on a test machine's PCI bus with the test driver attached (features not yet negotiated).
using Ringvisor.Devices.Virtio;

namespace Ringvisor.Devices.Tests.Virtio.Driver;

internal sealed class DeviceRig : IDisposable
{
    public DeviceRig(VirtioDevice device, bool worker = false, TestMachine? machine = null)
    {
        Machine = machine ?? new TestMachine();
        OwnsMachine = machine is null;
        Device = device;
        Transport = new VirtioPciTransport(device, Machine.Memory, worker);
        var a = Machine.Pci.AddDevice(Transport);
        Driver = new TestVirtioDriver(Machine, a);
    }

    public TestMachine Machine { get; }

    public bool OwnsMachine { get; }

    public VirtioDevice Device { get; }

    public VirtioPciTransport Transport { get; }

    public TestVirtioDriver Driver { get; }

    public void Dispose()
    {
        Transport.Dispose();
        (Device as IDisposable)?.Dispose();
        if (OwnsMachine)
        {
            Machine.Dispose();
        }
    }
}
