using Ringvisor.Devices.Platform;
using Ringvisor.Devices.Tests.Support;

namespace Ringvisor.Devices.Tests.Platform;

public class LocalApicTests
{
    private readonly ApicTestRig _rig = new();

    private LocalApic Bsp => _rig.Lapics[0];

    private void SendFixed(int target, byte vector) =>
        _rig.Bus.Deliver(new ApicMessage(vector, ApicDeliveryMode.Fixed, (byte)target, Logical: false));

    [Fact]
    public void Reset_Registers_PowerUpValues()
    {
        Assert.Equal(0xFFu, Bsp.Read32(ApicTestRig.Svr));
        Assert.Equal(0x0001_0000u, Bsp.Read32(ApicTestRig.LvtTimer));
        Assert.Equal(0xFFFF_FFFFu, Bsp.Read32(ApicTestRig.Dfr));
        Assert.Equal(0x0100_0000u, _rig.Lapics[1].Read32(0x20));
        Assert.Equal(0x14u, Bsp.Read32(0x30) & 0xFF);
        Assert.Equal(0xFEE0_0000UL, Bsp.MmioBase);
    }

    [Fact]
    public void SoftwareDisabled_FixedInterrupt_Dropped()
    {
        SendFixed(0, 0x50);
        Assert.False(Bsp.HasInterrupt);
    }

    [Fact]
    public void Priority_TwoVectors_HighestFirstAndPprTracksIsr()
    {
        _rig.Enable(0);
        SendFixed(0, 0x50);
        SendFixed(0, 0x60);
        Assert.Equal(0x60, Bsp.AcknowledgeInterrupt());
        Assert.Equal(0x60u, Bsp.Read32(ApicTestRig.Ppr));
        Assert.False(Bsp.HasInterrupt); // 0x50's class is below the in-service class

        SendFixed(0, 0x65);
        Assert.False(Bsp.HasInterrupt); // same class as the in-service vector: blocked too

        Bsp.Write32(ApicTestRig.Eoi, 0);
        Assert.Equal(0x65, Bsp.AcknowledgeInterrupt());
        Bsp.Write32(ApicTestRig.Eoi, 0);
        Assert.Equal(0x50, Bsp.AcknowledgeInterrupt());
        Bsp.Write32(ApicTestRig.Eoi, 0);
        Assert.Equal(-1, Bsp.AcknowledgeInterrupt());
        Assert.Equal(0u, Bsp.Read32(ApicTestRig.Isr + 0x30));
    }

    [Fact]
    public void Tmr_LevelThenEoi_StaysSetUntilAnEdgeIsAccepted()
    {
        _rig.Enable(0);
        _rig.Bus.Deliver(new ApicMessage(0x79, ApicDeliveryMode.Fixed, 0, Logical: false, LevelTriggered: true));
        Assert.Equal(0x79, Bsp.AcknowledgeInterrupt());
        Bsp.Write32(ApicTestRig.Eoi, 0);

        // SDM Vol. 3A §11.8.4: TMR changes only when the next interrupt on the vector is accepted.
        Assert.True(ApicTestRig.Bit(Bsp, ApicTestRig.Tmr, 0x79));
        SendFixed(0, 0x79);
        Assert.False(ApicTestRig.Bit(Bsp, ApicTestRig.Tmr, 0x79));
    }

    [Fact]
    public void Tpr_AboveVectorClass_BlocksUntilLowered()
    {
        _rig.Enable(0);
        Bsp.Write32(ApicTestRig.Tpr, 0x70);
        SendFixed(0, 0x60);
        Assert.False(Bsp.HasInterrupt);
        Assert.Equal(0x70u, Bsp.Read32(ApicTestRig.Ppr));
        Bsp.Write32(ApicTestRig.Tpr, 0x50);
        Assert.True(Bsp.HasInterrupt);
        Assert.Equal(0x60, Bsp.AcknowledgeInterrupt());
        Assert.True(ApicTestRig.Bit(Bsp, ApicTestRig.Isr, 0x60));
        Assert.False(ApicTestRig.Bit(Bsp, ApicTestRig.Irr, 0x60));
    }

    [Fact]
    public void TimerOneShot_Expires_RaisesVectorAndWakes()
    {
        _rig.Enable(0);
        Bsp.Write32(ApicTestRig.Divide, 0xB); // divide by 1
        Bsp.Write32(ApicTestRig.LvtTimer, 0x40);
        Bsp.Write32(ApicTestRig.InitialCount, 1000);

        _rig.Clock.Advance(400);
        Assert.Equal(600u, Bsp.Read32(ApicTestRig.CurrentCount));
        Assert.False(Bsp.HasInterrupt);
        int wakes = _rig.Wakeups[0].Count;

        _rig.Clock.Advance(600);
        Assert.True(_rig.Wakeups[0].Count > wakes);
        Assert.True(Bsp.HasInterrupt);
        Assert.Equal(0x40, Bsp.AcknowledgeInterrupt());
        Assert.Equal(0u, Bsp.Read32(ApicTestRig.CurrentCount));
        Assert.Equal(0, _rig.Clock.ArmedTimers);
    }

    [Fact]
    public void TimerOneShot_Divide16_CountsSlower()
    {
        _rig.Enable(0);
        Bsp.Write32(ApicTestRig.Divide, 0x3); // divide by 16
        Bsp.Write32(ApicTestRig.LvtTimer, 0x40);
        Bsp.Write32(ApicTestRig.InitialCount, 100);
        _rig.Clock.Advance(800);
        Assert.Equal(50u, Bsp.Read32(ApicTestRig.CurrentCount));
        _rig.Clock.Advance(800);
        Assert.True(Bsp.HasInterrupt);
    }

    [Fact]
    public void TimerPeriodic_SeveralPeriods_InterruptEachPeriod()
    {
        _rig.Enable(0);
        Bsp.Write32(ApicTestRig.Divide, 0xB);
        Bsp.Write32(ApicTestRig.LvtTimer, 0x2_0041);
        Bsp.Write32(ApicTestRig.InitialCount, 100_000);
        for (int i = 0; i < 5; i++)
        {
            _rig.Clock.Advance(99_999);
            Assert.False(Bsp.HasInterrupt);
            _rig.Clock.Advance(1);
            Assert.Equal(0x41, Bsp.AcknowledgeInterrupt());
            Bsp.Write32(ApicTestRig.Eoi, 0);
        }

        Assert.Equal(1, _rig.Clock.ArmedTimers);
    }

    [Fact]
    public void TimerMasked_Expires_NoInterrupt()
    {
        _rig.Enable(0);
        Bsp.Write32(ApicTestRig.LvtTimer, 0x1_0040);
        Bsp.Write32(ApicTestRig.InitialCount, 10);
        _rig.Clock.Advance(10_000);
        Assert.False(Bsp.HasInterrupt);
    }

    [Fact]
    public void TscDeadline_Reached_RaisesVectorAndClearsMsr()
    {
        _rig.Enable(0);
        Bsp.Write32(ApicTestRig.LvtTimer, 0x4_0042);
        Assert.True(Bsp.TryWriteMsr(LocalApic.MsrTscDeadline, 5000)); // TSC = ns at 1 GHz in the fake clock
        _rig.Clock.AdvanceTo(4999);
        Assert.False(Bsp.HasInterrupt);
        _rig.Clock.AdvanceTo(5000);
        Assert.True(Bsp.HasInterrupt);
        Assert.True(Bsp.TryReadMsr(LocalApic.MsrTscDeadline, out ulong deadline));
        Assert.Equal(0UL, deadline);
    }

    [Fact]
    public void TscDeadline_AlreadyPassed_FiresDuringTheWrmsr()
    {
        _rig.Enable(0);
        _rig.Clock.AdvanceTo(10_000);
        Bsp.Write32(ApicTestRig.LvtTimer, 0x4_0042);
        Assert.True(Bsp.TryWriteMsr(LocalApic.MsrTscDeadline, 9_000));
        Assert.Equal(0x42, Bsp.AcknowledgeInterrupt());
    }

    [Fact]
    public void TimerModeChange_OneShotToPeriodic_KeepsTmictAndTheCountInProgress()
    {
        _rig.Enable(0);
        Bsp.Write32(ApicTestRig.Divide, 0xB);
        Bsp.Write32(ApicTestRig.LvtTimer, 0x40);
        Bsp.Write32(ApicTestRig.InitialCount, 1_000_000);
        _rig.Clock.Advance(600_000);
        Bsp.Write32(ApicTestRig.LvtTimer, 0x2_0040);
        Assert.Equal(1_000_000u, Bsp.Read32(ApicTestRig.InitialCount));
        Assert.Equal(400_000u, Bsp.Read32(ApicTestRig.CurrentCount));

        // Periodic from here on: fires at the old deadline, then reloads TMICT.
        _rig.Clock.Advance(400_000);
        Assert.Equal(0x40, Bsp.AcknowledgeInterrupt());
        Assert.Equal(1_000_000u, Bsp.Read32(ApicTestRig.CurrentCount));
    }

    [Fact]
    public void TimerModeChange_IntoTscDeadline_DisarmsAndClearsTmict()
    {
        _rig.Enable(0);
        Bsp.Write32(ApicTestRig.LvtTimer, 0x40);
        Bsp.Write32(ApicTestRig.InitialCount, 1000);
        Bsp.Write32(ApicTestRig.LvtTimer, 0x4_0040);
        Assert.Equal(0u, Bsp.Read32(ApicTestRig.InitialCount));
        _rig.Clock.Advance(100_000);
        Assert.False(Bsp.HasInterrupt);
    }

    [Fact]
    public void TscDeadline_NotInDeadlineMode_Ignored()
    {
        _rig.Enable(0);
        Bsp.Write32(ApicTestRig.LvtTimer, 0x42);
        Assert.True(Bsp.TryWriteMsr(LocalApic.MsrTscDeadline, 5000));
        _rig.Clock.AdvanceTo(10_000);
        Assert.False(Bsp.HasInterrupt);
    }

    [Fact]
    public void Icr_InitThenStartup_ReachesTargetOnly()
    {
        Bsp.Write32(ApicTestRig.IcrHigh, 0x0100_0000);
        Bsp.Write32(ApicTestRig.IcrLow, 0x0000_4500); // INIT, assert
        Bsp.Write32(ApicTestRig.IcrLow, 0x0000_8500); // INIT level de-assert: no effect
        Bsp.Write32(ApicTestRig.IcrLow, 0x0000_4608); // SIPI, vector 8

        var ap = _rig.Lapics[1];
        Assert.True(ap.TakeInit());
        Assert.False(ap.TakeInit());
        Assert.True(ap.TryTakeStartup(out byte vector));
        Assert.Equal(8, vector);
        Assert.False(_rig.Lapics[2].TakeInit());
        Assert.True(_rig.Wakeups[1].Count > 0);
    }

    [Fact]
    public void Icr_FixedAllExcludingSelf_ReachesOthers()
    {
        _rig.EnableAll();
        Bsp.Write32(ApicTestRig.IcrLow, 0x000C_0070);
        Assert.False(Bsp.HasInterrupt);
        Assert.Equal(0x70, _rig.Lapics[1].AcknowledgeInterrupt());
        Assert.Equal(0x70, _rig.Lapics[2].AcknowledgeInterrupt());
    }

    [Fact]
    public void Icr_SelfShorthand_ReachesSender()
    {
        _rig.EnableAll();
        _rig.Lapics[2].Write32(ApicTestRig.IcrLow, 0x0004_0071);
        Assert.Equal(0x71, _rig.Lapics[2].AcknowledgeInterrupt());
        Assert.False(Bsp.HasInterrupt);
    }

    [Fact]
    public void Icr_LogicalFlat_ReachesMatchingLdr()
    {
        _rig.EnableAll();
        _rig.Lapics[1].Write32(ApicTestRig.Ldr, 0x0100_0000);
        _rig.Lapics[2].Write32(ApicTestRig.Ldr, 0x0200_0000);
        Bsp.Write32(ApicTestRig.IcrHigh, 0x0200_0000);
        Bsp.Write32(ApicTestRig.IcrLow, 0x0000_0872); // fixed, logical
        Assert.False(_rig.Lapics[1].HasInterrupt);
        Assert.Equal(0x72, _rig.Lapics[2].AcknowledgeInterrupt());
    }

    [Fact]
    public void Icr_LogicalCluster_MatchesClusterAndMember()
    {
        _rig.EnableAll();
        foreach (var l in _rig.Lapics)
        {
            l.Write32(ApicTestRig.Dfr, 0x0FFF_FFFF); // cluster model
        }

        _rig.Lapics[1].Write32(ApicTestRig.Ldr, 0x1100_0000); // cluster 1, member bit 0
        _rig.Lapics[2].Write32(ApicTestRig.Ldr, 0x2100_0000); // cluster 2, member bit 0
        Bsp.Write32(ApicTestRig.IcrHigh, 0x2100_0000);
        Bsp.Write32(ApicTestRig.IcrLow, 0x0000_0873);
        Assert.False(_rig.Lapics[1].HasInterrupt);
        Assert.True(_rig.Lapics[2].HasInterrupt);
    }

    [Fact]
    public void Icr_LowestPriority_PicksLowestTpr()
    {
        _rig.EnableAll();
        _rig.Lapics[0].Write32(ApicTestRig.Tpr, 0x20);
        _rig.Lapics[1].Write32(ApicTestRig.Tpr, 0x30);
        _rig.Lapics[2].Write32(ApicTestRig.Tpr, 0x10);
        _rig.Lapics[1].Write32(ApicTestRig.IcrHigh, 0xFF00_0000);
        _rig.Lapics[1].Write32(ApicTestRig.IcrLow, 0x0000_0174); // lowest priority, physical broadcast
        Assert.False(_rig.Lapics[0].HasInterrupt);
        Assert.True(_rig.Lapics[2].HasInterrupt);
    }

    [Fact]
    public void Icr_IllegalVector_SetsSendErrorInEsr()
    {
        _rig.Enable(0);
        Bsp.Write32(ApicTestRig.IcrLow, 0x000C_0005);
        Bsp.Write32(ApicTestRig.Esr, 0);
        Assert.Equal(0x20u, Bsp.Read32(ApicTestRig.Esr));
        Assert.False(_rig.Lapics[1].HasInterrupt);
    }

    [Fact]
    public void Nmi_Delivered_TakenOnce()
    {
        _rig.Bus.Deliver(new ApicMessage(0, ApicDeliveryMode.Nmi, 0, Logical: false));
        Assert.True(Bsp.TakeNmi());
        Assert.False(Bsp.TakeNmi());
    }

    [Fact]
    public void ApicBaseMsr_Bsp_ReadsEnabledBspAtDefaultBase()
    {
        Assert.True(Bsp.TryReadMsr(LocalApic.MsrApicBase, out ulong value));
        Assert.Equal(0xFEE0_0900UL, value);
        Assert.True(_rig.Lapics[1].TryReadMsr(LocalApic.MsrApicBase, out ulong ap));
        Assert.Equal(0xFEE0_0800UL, ap);
    }

    [Fact]
    public void ApicBaseMsr_X2ApicOrReservedBits_Refused()
    {
        Assert.False(Bsp.TryWriteMsr(LocalApic.MsrApicBase, 0xFEE0_0C00));
        Assert.False(Bsp.TryWriteMsr(LocalApic.MsrApicBase, 0xFEE0_0801));
        Assert.False(Bsp.TryReadMsr(0x802, out _));
    }

    [Fact]
    public void ApicBaseMsr_BitAtMaxPhyAddr_Refused()
    {
        Assert.False(Bsp.TryWriteMsr(LocalApic.MsrApicBase, 0xFEE0_0900 | (1UL << 40)));
        Assert.True(Bsp.TryWriteMsr(LocalApic.MsrApicBase, 0xFF_FEE0_0900));
    }

    [Fact]
    public void ApicBaseMsr_DisableThenEnable_RestoresTheInitialId()
    {
        Bsp.Write32(0x20, 0x0500_0000);
        Assert.Equal(5, Bsp.Id);
        Assert.True(Bsp.TryWriteMsr(LocalApic.MsrApicBase, 0xFEE0_0100));
        Assert.True(Bsp.TryWriteMsr(LocalApic.MsrApicBase, 0xFEE0_0900));
        Assert.Equal(0, Bsp.Id);
    }

    [Fact]
    public void ApicBaseMsr_Disable_ClearsMmioBaseAndMovesBase()
    {
        Assert.True(Bsp.TryWriteMsr(LocalApic.MsrApicBase, 0xFED0_0000));
        Assert.Null(Bsp.MmioBase);
        Assert.True(Bsp.TryWriteMsr(LocalApic.MsrApicBase, 0xFED0_0800));
        Assert.Equal(0xFED0_0000UL, Bsp.MmioBase);
    }

    [Fact]
    public void ExtInt_ApicSoftwareDisabled_PicInterruptPassesThrough()
    {
        InitPic();
        _rig.Routing.SetGsi(1, true);
        Assert.True(Bsp.HasInterrupt);
        Assert.Equal(0x21, Bsp.AcknowledgeInterrupt());
        Assert.True(_rig.Wakeups[0].Count > 0);
        Assert.False(_rig.Lapics[1].HasInterrupt); // the PIC is wired to the BSP only
    }

    [Fact]
    public void ExtInt_ApicEnabledLint0Masked_PicBlocked_UntilVirtualWire()
    {
        InitPic();
        _rig.Enable(0);
        _rig.Routing.SetGsi(1, true);
        Assert.False(Bsp.HasInterrupt);
        Bsp.Write32(ApicTestRig.LvtLint0, 0x700); // ExtINT, unmasked
        Assert.True(Bsp.HasInterrupt);
        Assert.Equal(0x21, Bsp.AcknowledgeInterrupt());
    }

    [Fact]
    public void SaveRestore_RoundTrip_KeepsPendingVectorsAndTimer()
    {
        _rig.Enable(0);
        SendFixed(0, 0x55);
        Bsp.Write32(ApicTestRig.Divide, 0xB);
        Bsp.Write32(ApicTestRig.LvtTimer, 0x40);
        Bsp.Write32(ApicTestRig.InitialCount, 1000);
        _rig.Clock.Advance(300);

        var other = new ApicTestRig(1);
        other.Lapics[0].Restore(Bsp.Save());
        Assert.Equal(0x55, other.Lapics[0].AcknowledgeInterrupt());
        Assert.Equal(700u, other.Lapics[0].Read32(ApicTestRig.CurrentCount));
    }

    private void InitPic()
    {
        _rig.Pic.MasterPorts.Out8(0, 0x11);
        _rig.Pic.MasterPorts.Out8(1, 0x20);
        _rig.Pic.MasterPorts.Out8(1, 0x04);
        _rig.Pic.MasterPorts.Out8(1, 0x01);
    }
}
