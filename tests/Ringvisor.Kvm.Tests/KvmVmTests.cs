// KvmVm operations the engine does not exercise on its own: the in-kernel 8259s' ELCR set by firmware.
using Ringvisor.Kvm.Native;
using Ringvisor.Kvm.Tests.Support;
using Ringvisor.TestSupport;

namespace Ringvisor.Kvm.Tests;

public sealed class KvmVmTests
{
    [KvmFact]
    public unsafe void SetPicLevelTriggered_PciIrqs_ElcrReadsBackWithinKvmMask()
    {
        using var vm = new TestVm();

        // IRQ 10 and 11 (slave inputs 2 and 3) as firmware sets them for PCI; IRQ 0 is not level-capable on a PIIX.
        vm.Engine.Vm.SetPicLevelTriggered((1 << 10) | (1 << 11) | (1 << 0));

        var master = vm.Engine.Vm.GetIrqchip(KvmIrqchipId.PicMaster);
        var slave = vm.Engine.Vm.GetIrqchip(KvmIrqchipId.PicSlave);
        Assert.Equal(0, master.Chip[KvmIrqchip.PicElcrOffset]);
        Assert.Equal(0b0000_1100, slave.Chip[KvmIrqchip.PicElcrOffset]);
    }
}
