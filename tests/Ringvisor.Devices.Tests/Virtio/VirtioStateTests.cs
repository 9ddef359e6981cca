using Ringvisor.Devices.Tests.Virtio.Driver;
using Ringvisor.Devices.Virtio;
using Ringvisor.Devices.Virtio.Block;
using Ringvisor.Devices.Virtio.Rng;

namespace Ringvisor.Devices.Tests.Virtio;

public sealed class VirtioStateTests
{
    [Fact]
    public void SaveRestore_AfterReset_QueuesResumeWhereTheyWere()
    {
        using var r = BlockRig.Create(msix: true);
        var data = BlockRig.Pattern(1024, 21);
        Assert.Equal(VirtioBlockDevice.StatusOk, r.Request(VirtioBlockDevice.TypeOut, 4, data, 0, out _));
        var state = r.Transport.Save();

        r.Driver.Status = 0; // wipe the live state
        Assert.False(r.Transport.Queues[0].Enabled);
        r.Transport.Restore(state);

        Assert.Equal(state.Status, r.Driver.DeviceStatus);
        Assert.Equal(1, r.Transport.Queues[0].NextUsedIndex);
        r.Queue.SetUsedEvent(1); // event index: ask for the interrupt of the next completion
        Assert.Equal(VirtioBlockDevice.StatusOk, r.Request(VirtioBlockDevice.TypeIn, 4, null, 1024, out var back));
        Assert.Equal(data, back);
        Assert.Equal(2, r.Machine.Interrupts.MsiCount(0x40)); // MSI-X table restored too
    }

    [Fact]
    public void SaveRestore_BarMovedAfterSave_RemapAllPutsItBack()
    {
        using var r = new DeviceRig(new VirtioRngDevice());
        r.Driver.NegotiateOffered();
        var t = r.Transport;
        ulong bar = t.GetBarAddress(VirtioPciTransport.VirtioBarIndex)!.Value;
        var state = t.Save();
        r.Machine.ConfigWrite32(r.Driver.Address, 0x20, 0xD800_0000);
        Assert.Equal(0xD800_0000UL, r.Machine.Pci.GetMappedAddress(t, VirtioPciTransport.VirtioBarIndex));
        t.Restore(state);
        r.Machine.Pci.RemapAll();
        Assert.Equal(bar, r.Machine.Pci.GetMappedAddress(t, VirtioPciTransport.VirtioBarIndex));
        Assert.Equal(state.DriverFeatures, t.DriverFeatures);
    }

    [Fact]
    public void Restore_StateOfAnotherDeviceType_Throws()
    {
        using var rng = new DeviceRig(new VirtioRngDevice());
        using var blk = BlockRig.Create();
        var e = Assert.Throws<ArgumentException>(() => rng.Transport.Restore(blk.Transport.Save()));
        Assert.Contains("differ", e.Message);
    }

    [Fact]
    public void Restore_UnknownVersion_Throws()
    {
        using var rng = new DeviceRig(new VirtioRngDevice());
        var s = rng.Transport.Save() with { Version = 99 };
        Assert.Throws<ArgumentException>(() => rng.Transport.Restore(s));
    }
}
