using Ringvisor.Devices.Tests.Virtio.Driver;
using Ringvisor.Devices.Virtio.Console;

namespace Ringvisor.Devices.Tests.Virtio;

public sealed class VirtioConsoleDeviceTests
{
    [Fact]
    public void Transmit_GuestBytes_ReachHostStream()
    {
        var output = new MemoryStream();
        using var r = new DeviceRig(new VirtioConsoleDevice("con0", null, output));
        r.Driver.NegotiateOffered();
        r.Driver.SetupQueue(0, 8);
        var tx = r.Driver.SetupQueue(1, 8);
        r.Driver.DriverOk();
        var text = "hello from the guest\n"u8.ToArray();
        ulong a = r.Machine.Allocator.Allocate((ulong)text.Length);
        r.Machine.Memory.Write(a, text);
        tx.Add([new DriverBuffer(a, (uint)text.Length, false)]);
        Assert.True(tx.TryTakeUsed(out _, out _));
        Assert.Equal(text, output.ToArray());
    }

    [Fact]
    public void Receive_HostInput_SplitAcrossGuestBuffers()
    {
        var dev = new VirtioConsoleDevice("con0", null, null);
        using var r = new DeviceRig(dev);
        r.Driver.NegotiateOffered();
        var rx = r.Driver.SetupQueue(0, 8);
        r.Driver.SetupQueue(1, 8);
        r.Driver.DriverOk();
        dev.SendToGuest("abcdefghij"u8);
        ulong b1 = r.Machine.Allocator.Allocate(4);
        ulong b2 = r.Machine.Allocator.Allocate(16);
        rx.Add([new DriverBuffer(b1, 4, true)]);
        rx.Add([new DriverBuffer(b2, 16, true)]);
        Assert.True(rx.TryTakeUsed(out _, out uint l1));
        Assert.True(rx.TryTakeUsed(out _, out uint l2));
        Assert.Equal(4u, l1);
        Assert.Equal(6u, l2);
        var got = new byte[10];
        r.Machine.Memory.Read(b1, got.AsSpan(0, 4));
        r.Machine.Memory.Read(b2, got.AsSpan(4, 6));
        Assert.Equal("abcdefghij"u8.ToArray(), got);
    }

    [Fact]
    public void Input_FromHostStream_ReadOnWorkerAndDelivered()
    {
        var input = new MemoryStream("ping"u8.ToArray());
        using var r = new DeviceRig(new VirtioConsoleDevice("con0", input, null), worker: true);
        r.Driver.NegotiateOffered();
        var rx = r.Driver.SetupQueue(0, 8);
        r.Driver.SetupQueue(1, 8);
        ulong b = r.Machine.Allocator.Allocate(16);
        rx.Add([new DriverBuffer(b, 16, true)], kick: false);
        r.Driver.DriverOk();
        var (_, len) = rx.WaitUsed();
        var got = new byte[len];
        r.Machine.Memory.Read(b, got);
        Assert.Equal("ping"u8.ToArray(), got);
    }
}
