// One virtual machine monitor under benchmark: how to boot the default guest with disks and a NIC as a child
// process, and how to join two of its VMs on one LAN.
using System.Diagnostics;
using Ringvisor.Machine.Images;

namespace Ringvisor.Bench.Io;

internal abstract class Vmm
{
    public abstract string Name { get; }

    /// <summary>
    /// Boots the default guest with <paramref name="extraAppend"/> after its command line, the
    /// <paramref name="disks"/> as virtio-blk vda, vdb, … and the VMM arguments of <paramref name="net"/> (one
    /// virtio-net NIC) if given.
    /// </summary>
    public abstract ConsoleProcess Start(string label, GuestImagePaths image, string extraAppend, IReadOnlyList<string> disks, IReadOnlyList<string>? net, Stopwatch clock);

    /// <summary>A private LAN for one receiver and one sender VM; null (with a message) if it cannot be set up.</summary>
    public abstract NetLink? CreateLink(Stopwatch clock);
}
