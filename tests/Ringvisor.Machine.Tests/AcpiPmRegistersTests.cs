// The ACPI PM1a event/control registers: write-1-to-clear status, SCI_EN always set, S5 powers off.
using Ringvisor.Core.Vm;

namespace Ringvisor.Machine.Tests;

public sealed class AcpiPmRegistersTests
{
    private readonly StopRecorder _vm = new();
    private readonly AcpiPmRegisters _pm;

    public AcpiPmRegistersTests()
    {
        _pm = new AcpiPmRegisters(_vm, softOffSleepType: 5);
    }

    private ushort Read16(ulong offset)
    {
        Span<byte> b = stackalloc byte[2];
        _pm.Read(offset, b);
        return BitConverter.ToUInt16(b);
    }

    private void Write16(ulong offset, ushort value) => _pm.Write(offset, BitConverter.GetBytes(value));

    [Fact]
    public void Control_AfterReset_SciEnabledAndSleepEnableNeverReadsBack()
    {
        Assert.Equal(1, Read16(4) & 1);
        Write16(4, (ushort)((1 << 10) | (1 << 13))); // SLP_TYP 1 with SLP_EN: not offered, ignored
        Assert.Equal((ushort)((1 << 10) | 1), Read16(4));
        Assert.Null(_vm.Reason);
    }

    [Fact]
    public void Control_SoftOffTypeWithSleepEnable_PowersOff()
    {
        Write16(4, 5 << 10);          // Linux writes SLP_TYP first ...
        Assert.Null(_vm.Reason);
        Write16(4, (5 << 10) | (1 << 13)); // ... then SLP_EN
        Assert.Equal(VmStopReason.PowerOff, _vm.Reason);
        Assert.Equal(0, _vm.Status);
    }

    [Fact]
    public void Control_ByteWrites_HighByteCarriesSleepEnable()
    {
        _pm.Write(5, [(byte)((5 << 2) | (1 << 5))]); // bits 10-12 and 13 are bits 2-4 and 5 of the high byte
        Assert.Equal(VmStopReason.PowerOff, _vm.Reason);
    }

    [Fact]
    public void Status_WriteOneToClear_EnableReadsBack()
    {
        Write16(2, 0x0120);
        Assert.Equal(0x0120, Read16(2));
        Write16(0, 0xFFFF);
        Assert.Equal(0, Read16(0));
    }

    private sealed class StopRecorder : IVmControl
    {
        public VmStopReason? Reason { get; private set; }

        public int Status { get; private set; }

        public void RequestStop(VmStopReason reason, int exitStatus, string? detail = null)
        {
            Reason ??= reason;
            Status = exitStatus;
        }
    }
}
