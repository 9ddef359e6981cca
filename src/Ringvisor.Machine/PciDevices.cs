// The machine's PCI functions: virtio-blk per --disk, virtio-net per --net, virtio-console per --virtio-console, and
// virtio-rng. Slots are assigned in that order after the host bridge, so the first disk is /dev/vda, the first NIC
// eth0 and the first console /dev/hvc0.
using Ringvisor.Core.Memory;
using Ringvisor.Core.Net;
using Ringvisor.Devices.Pci;
using Ringvisor.Devices.Virtio;
using Ringvisor.Devices.Virtio.Console;
using Ringvisor.Machine.ConsolePorts;
using Ringvisor.Net.Backends;

namespace Ringvisor.Machine;

internal static class PciDevices
{
    /// <summary>Creates and places the functions; returns their transports in slot order and the socket console ports.</summary>
    public static (IReadOnlyList<VirtioPciTransport> Transports, IReadOnlyList<UnixSocketConsolePort> SocketPorts) Add(
        VirtualMachine vm, PciBus pci, GuestMemory memory, MachineConfig config)
    {
        var ports = new List<UnixSocketConsolePort>();
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

        for (int i = 0; i < config.Consoles.Count; i++)
        {
            added.Add(AddConsole(vm, pci, memory, config.Consoles[i], $"console{i}", ports));
        }

        var rng = VirtioPci.Rng(memory);
        vm.Own(rng);
        pci.AddDevice(rng);
        added.Add(rng);
        return (added, ports);
    }

    private static VirtioPciTransport AddConsole(VirtualMachine vm, PciBus pci, GuestMemory memory, ConsoleConfig c, string name,
        List<UnixSocketConsolePort> ports)
    {
        if (c.Kind == ConsoleBackendKind.File)
        {
            FileStream file;
            try
            {
                file = new FileStream(c.Path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"virtio-console file {c.Path}: {e.Message}", e);
            }

            vm.Own(file);
            var toFile = VirtioPci.Console(memory, hostInput: null, hostOutput: file, name);
            vm.Own(toFile);
            pci.AddDevice(toFile);
            return toFile;
        }

        var port = UnixSocketConsolePort.Listen(c.Path);
        VirtioPciTransport transport;
        try
        {
            transport = VirtioPci.Console(memory, hostInput: null, hostOutput: port.Output, name);
        }
        catch
        {
            port.Dispose();
            throw;
        }

        // Owned in this order so the port (whose input thread hands bytes to the device) is disposed first.
        vm.Own(transport);
        vm.Own(port);
        ports.Add(port);
        pci.AddDevice(transport);
        port.Attach((VirtioConsoleDevice)transport.Device);
        return transport;
    }
}
