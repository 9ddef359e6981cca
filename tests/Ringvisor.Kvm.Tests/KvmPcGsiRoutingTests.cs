// KvmPcGsiRouting: the table matches the PC wiring the firmware tables describe (MP Spec 1.4 §5.3 / ACPI MADT:
// ISA IRQ 0 on IOAPIC pin 2, IRQ 2 the 8259 cascade), and KVM_SET_GSI_ROUTING would accept it.
using Ringvisor.Kvm.Native;

namespace Ringvisor.Kvm.Tests;

public class KvmPcGsiRoutingTests
{
    private const int None = -1;

    [Theory]
    [InlineData(0, KvmIrqchipId.PicMaster, 0, 2)]    // the PIT: IOAPIC pin 2 (interrupt source override)
    [InlineData(1, KvmIrqchipId.PicMaster, 1, 1)]
    [InlineData(2, KvmIrqchipId.PicMaster, 2, None)] // the cascade: its IOAPIC pin carries IRQ 0
    [InlineData(3, KvmIrqchipId.PicMaster, 3, 3)]
    [InlineData(4, KvmIrqchipId.PicMaster, 4, 4)]
    [InlineData(7, KvmIrqchipId.PicMaster, 7, 7)]
    [InlineData(8, KvmIrqchipId.PicSlave, 0, 8)]
    [InlineData(9, KvmIrqchipId.PicSlave, 1, 9)]
    [InlineData(12, KvmIrqchipId.PicSlave, 4, 12)]
    [InlineData(15, KvmIrqchipId.PicSlave, 7, 15)]
    public void Routes_IsaGsi_ReachesItsPicInputAndIoApicPin(int gsi, KvmIrqchipId pic, int picPin, int ioApicPin)
    {
        var routes = KvmPcGsiRouting.Routes.Where(r => r.Gsi == (uint)gsi).ToList();

        Assert.Contains(new KvmGsiRoute((uint)gsi, pic, (uint)picPin), routes);
        var ioApic = routes.Where(r => r.Chip == KvmIrqchipId.IoApic).Select(r => (int)r.Pin).ToList();
        Assert.Equal(ioApicPin == None ? [] : [ioApicPin], ioApic);
        Assert.Equal(ioApicPin == None ? 1 : 2, routes.Count);
        Assert.Equal(ioApicPin == None ? null : ioApicPin, KvmPcGsiRouting.IoApicPinOf(gsi));
    }

    [Theory]
    [InlineData(16)]
    [InlineData(19)]
    [InlineData(23)]
    public void Routes_PciGsi_ReachesOnlyItsIoApicPin(int gsi)
    {
        var routes = KvmPcGsiRouting.Routes.Where(r => r.Gsi == (uint)gsi).ToList();

        Assert.Equal([new KvmGsiRoute((uint)gsi, KvmIrqchipId.IoApic, (uint)gsi)], routes);
    }

    [Fact]
    public void Routes_EveryControllerInput_DrivenByAtMostOneGsi()
    {
        // Two GSIs on one pin would OR unrelated devices together; KVM also rejects a GSI with two routes to one chip.
        Assert.Equal(KvmPcGsiRouting.Routes.Length, KvmPcGsiRouting.Routes.Select(r => (r.Chip, r.Pin)).Distinct().Count());
        Assert.Equal(KvmPcGsiRouting.Routes.Length, KvmPcGsiRouting.Routes.Select(r => (r.Gsi, r.Chip)).Distinct().Count());
        Assert.DoesNotContain(KvmPcGsiRouting.Routes, r => r.Chip == KvmIrqchipId.IoApic && r.Pin == 0);
        Assert.All(KvmPcGsiRouting.Routes, r => Assert.InRange(r.Gsi, 0u, (uint)KvmIrqChip.GsiCount - 1));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(24)]
    public void IoApicPinOf_OutsideTheTable_IsNull(int gsi) => Assert.Null(KvmPcGsiRouting.IoApicPinOf(gsi));
}
