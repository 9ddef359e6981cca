// The machine's PCI functions: virtio-blk per --disk, virtio-net per --net, and virtio-rng. Slots are assigned in
// that order after the host bridge, so the first disk is /dev/vda and the first NIC eth0.
using Ringvisor.Core.Memory;
using Ringvisor.Core.Net;
using Ringvisor.Devices.Pci;
using Ringvisor.Devices.Virtio;
using Ringvisor.Net.Backends;

namespace Ringvisor.Machine;

internal static class PciDevices
{
    /// <summary>Creates and places the functions; returns their transports in slot order.</summary>
    public static IReadOnlyList<VirtioPciTransport> Add(VirtualMachine vm, PciBus pci, GuestMemory memory, MachineConfig config)
    {
        var added = new List<VirtioPciTransport>();
        for (int i = 0; i < config.Disks.Count; i++)
        {
            var d = config.Disks[i];
            var blk = VirtioPci.Block(memory, d.Path, d.ReadOnly, name: $"disk{i}");
            vm.Own(blk);
            pci.AddDevice(blk);
            added.Add(blk);
        }

        for (int i = 0; i < config.Nets.Count; i++)
        {
            var n = config.Nets[i];
            INetworkBackend backend = n.Kind switch
            {
                NetBackendKind.Switch => SwitchPortBackend.ConnectToSwitch(n.Target),
                _ => TapBackend.Open(n.Target),
            };
            var nic = VirtioPci.Network(memory, backend, $"{config.Name}/net{i}", n.Mac);
            vm.Own(nic);
            pci.AddDevice(nic);
            added.Add(nic);
        }

        var rng = VirtioPci.Rng(memory);
        vm.Own(rng);
        pci.AddDevice(rng);
        added.Add(rng);
        return added;
    }
}
