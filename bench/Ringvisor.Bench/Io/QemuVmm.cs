// QEMU TCG with the same kernel, initramfs, memory, one vCPU and modern-only virtio-pci devices
// (disable-legacy=on, as Ringvisor implements only the virtio 1.x interface). Two QEMU VMs are joined by QEMU's own
// -netdev socket over loopback, so QEMU's figure does not depend on Ringvisor's switch.
using System.Diagnostics;
using System.Globalization;
using Ringvisor.Machine.Images;

namespace Ringvisor.Bench.Io;

internal sealed class QemuVmm(string qemu) : Vmm
{
    // Locally administered unicast MACs (IEEE 802: bit 1 of the first octet set) in QEMU's 52:54:00 range.
    private const string ReceiverMac = "52:54:00:77:00:01";
    private const string SenderMac = "52:54:00:77:00:02";

    public override string Name => "qemu-tcg";

    public override ConsoleProcess Start(string label, GuestImagePaths image, string extraAppend, IReadOnlyList<string> disks, IReadOnlyList<string>? net, Stopwatch clock)
    {
        var args = new List<string>
        {
            "-accel", "tcg", "-M", "pc", "-m", "256", "-smp", "1", "-kernel", image.Kernel, "-initrd", image.Initrd,
            "-append", $"{image.DefaultCommandLine} {extraAppend}",
        };
        for (int i = 0; i < disks.Count; i++)
        {
            string id = "d" + i.ToString(CultureInfo.InvariantCulture);
            args.AddRange(["-drive", $"file={disks[i]},if=none,id={id},format=raw", "-device", $"virtio-blk-pci,drive={id},disable-legacy=on"]);
        }

        args.AddRange(net ?? []);
        args.AddRange(["-display", "none", "-serial", "stdio", "-no-reboot", "-nodefaults"]);
        return ConsoleProcess.Start($"{Name} {label}", qemu, args, clock);
    }

    public override NetLink? CreateLink(Stopwatch clock)
    {
        int port = IoBenchmark.FreeLoopbackPort();
        string endpoint = $"127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}";
        return new NetLink(
            ["-netdev", $"socket,id=n0,listen={endpoint}", "-device", $"virtio-net-pci,netdev=n0,disable-legacy=on,mac={ReceiverMac}"],
            ["-netdev", $"socket,id=n0,connect={endpoint}", "-device", $"virtio-net-pci,netdev=n0,disable-legacy=on,mac={SenderMac}"],
            dispose: null);
    }
}
