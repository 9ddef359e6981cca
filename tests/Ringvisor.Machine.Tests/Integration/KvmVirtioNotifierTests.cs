// Virtio queue notifications under the kvm engine go through KVM ioeventfds (KvmVirtioNotifier), not MMIO exits:
// a tiny long-mode guest writes the notify register of the machine's virtio-rng, moves the virtio BAR through PCI
// configuration mechanism #1 and notifies again at the new address.
using Iced.Intel;
using Ringvisor.Core.Vm;
using Ringvisor.Devices.Pci;
using Ringvisor.Devices.Virtio;
using Ringvisor.Machine.Tests.Boot;
using Ringvisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Machine.Tests.Integration;

public sealed class KvmVirtioNotifierTests
{
    private const ulong Load = 0x10_0000;

    // Mailbox the test fills before the guest starts (and the handshake flag it sets while the guest waits).
    private const ulong OldNotifySlot = 0x8_0000;
    private const ulong ConfigAddressSlot = 0x8_0008;
    private const ulong NewBarLowSlot = 0x8_0010;
    private const ulong NewNotifySlot = 0x8_0018;
    private const ulong GoFlag = 0x8_0020;

    /// <summary>PCI 3.0 §3.2.2.3.2 configuration mechanism #1: CONFIG_ADDRESS and CONFIG_DATA.</summary>
    private const ushort ConfigAddressPort = 0xCF8;
    private const ushort ConfigDataPort = 0xCFC;

    /// <summary>Type-0 header offset of BAR 4 (PCI 3.0 §6.2.5.1); the virtio BAR is 64-bit, this is its low half.</summary>
    private const int Bar4Offset = 0x20;

    [KvmFact]
    public void NotifyWrite_UnderKvm_ReachesDeviceThroughEventfdAndFollowsBarMove()
    {
        using var m = TestMachine.Build(EngineKind.Kvm, GuestImage(), debugExit: true);
        var rng = m.Machine.VirtioDevices[^1];
        var notifier = m.Machine.VirtioNotifier;
        Assert.NotNull(notifier);
        Assert.Equal(VirtioDeviceType.Entropy, rng.Device.DeviceType);

        ulong oldNotify = rng.GetNotifyAddress(0)!.Value;
        ulong oldBar = m.Machine.Pci.GetMappedAddress(rng, VirtioPciTransport.VirtioBarIndex)!.Value;
        ulong newBar = oldBar + 0x10_0000; // free: the firmware packed the BARs at the bottom of the window
        ulong newNotify = newBar + (oldNotify - oldBar);
        Assert.Equal(oldNotify, notifier.RegisteredAddress(rng, 0));
        int device = FindDevice(m.Machine.Pci, rng);
        Assert.True(device > 0);

        var mem = m.Vm.Memory;
        Assert.True(mem.TryWrite(OldNotifySlot, oldNotify));
        Assert.True(mem.TryWrite(ConfigAddressSlot, 0x8000_0000UL | ((ulong)device << 11) | Bar4Offset));
        Assert.True(mem.TryWrite(NewBarLowSlot, (newBar & 0xFFFF_FFF0UL) | 0b100)); // keep the 64-bit memory BAR type bits
        Assert.True(mem.TryWrite(NewNotifySlot, newNotify));
        long unclaimedBefore = m.Vm.Mmio.UnclaimedWrites;
        var stats = rng.Device.Statistics;

        m.Vm.Start();
        Assert.True(SpinWait.SpinUntil(() => stats.Notifications >= 1, TimeSpan.FromSeconds(30)), "first notification never arrived");
        Assert.Equal(1, stats.Notifications);
        Assert.Equal(0, rng.MmioNotifications);
        Assert.True(mem.TryWrite(GoFlag, 1UL));

        var result = m.Vm.WaitForStop(TimeSpan.FromSeconds(60));
        Assert.True(result.Reason == VmStopReason.DebugExit, $"{result.Reason}: {result.Detail}");
        Assert.True(SpinWait.SpinUntil(() => stats.Notifications >= 2, TimeSpan.FromSeconds(10)), "notification after the BAR move never arrived");

        Assert.Equal(2, stats.Notifications);
        Assert.Equal(0, rng.MmioNotifications);
        Assert.Equal(2, notifier.DeliveredNotifications);
        Assert.Equal(newNotify, rng.GetNotifyAddress(0));
        Assert.Equal(newNotify, notifier.RegisteredAddress(rng, 0));

        // The guest also wrote the old notify address after the move: with the eventfd unregistered there, the
        // write exits and finds nothing on the bus.
        Assert.True(m.Vm.Mmio.UnclaimedWrites > unclaimedBefore);
    }

    [KvmFact]
    public void Add_KvmRefusesRegistration_FallsBackToMmioAndLogsOnce()
    {
        using var m = TestMachine.Build(EngineKind.Kvm, GuestImage());
        var rng = m.Machine.VirtioDevices[^1];
        var engine = Assert.IsType<Kvm.KvmEngine>(m.Vm.Engine);
        var log = new List<string>();

        // The machine's notifier already holds the (address, length) pair, so KVM refuses a second one (EEXIST).
        using var second = new KvmVirtioNotifier(engine, m.Machine.Pci, log.Add);
        second.Add(rng);

        Assert.Equal(1, second.FailedRegistrations);
        Assert.Null(second.RegisteredAddress(rng, 0));
        Assert.Single(log);
        Assert.Contains("MMIO", log[0]);
    }

    private static int FindDevice(PciBus pci, IPciFunction function)
    {
        for (int d = 0; d < PciBus.DevicesPerBus; d++)
        {
            if (ReferenceEquals(pci.GetFunction(new PciAddress(0, (byte)d, 0)), function))
            {
                return d;
            }
        }

        return -1;
    }

    /// <summary>
    /// A 64-bit ELF entered in long mode with the loader's identity map: notify, wait for the test, move BAR 4,
    /// write the old notify address, notify at the new one, leave through isa-debug-exit.
    /// </summary>
    private static byte[] GuestImage()
    {
        var a = new Assembler(64);
        var wait = a.CreateLabel();
        a.mov(rax, __qword_ptr[(long)OldNotifySlot]);
        a.mov(__word_ptr[rax], 0);
        a.Label(ref wait);
        a.cmp(__dword_ptr[(long)GoFlag], 0);
        a.je(wait);
        a.mov(rax, __qword_ptr[(long)ConfigAddressSlot]);
        a.mov(dx, ConfigAddressPort);
        a.@out(dx, eax);
        a.mov(rax, __qword_ptr[(long)NewBarLowSlot]);
        a.mov(dx, ConfigDataPort);
        a.@out(dx, eax);
        a.mov(rax, __qword_ptr[(long)OldNotifySlot]);
        a.mov(__word_ptr[rax], 0);
        a.mov(rax, __qword_ptr[(long)NewNotifySlot]);
        a.mov(__word_ptr[rax], 0);
        a.mov(al, 0);
        a.@out((byte)TestKernels.DebugExitPort, al);
        a.hlt();
        var writer = new CodeWriterBytes();
        a.Assemble(writer, Load);
        return new ElfBuilder(is64: true) { Entry = Load }.Load(Load, [.. writer.Bytes]).Build();
    }

    private sealed class CodeWriterBytes : CodeWriter
    {
        public List<byte> Bytes { get; } = [];

        public override void WriteByte(byte value) => Bytes.Add(value);
    }
}
