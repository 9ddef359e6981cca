// ACPI fixed-hardware power management registers (ACPI 6.4 §4.8.3.1, §4.8.3.2): the PM1a event block (PM1_STS,
// PM1_EN) and the PM1a control block (PM1_CNT) at the ports the FADT names (AcpiTables.PmBase). There is no SMI
// command port, so the machine is always in ACPI mode and SCI_EN reads as 1. Writing SLP_EN with the \_S5 sleep
// type powers the VM off; other sleep states are not offered in the DSDT and are ignored. Nothing here raises the
// SCI: no fixed events (timer, buttons, RTC) are implemented.
//
// Register logic only; it lives in Machine because it belongs to the firmware tables the loader writes.
using System.Buffers.Binary;
using Ringvisor.Core.Bus;
using Ringvisor.Core.Vm;

namespace Ringvisor.Machine;

public sealed class AcpiPmRegisters : IBusDevice
{
    /// <summary>PM1_EVT_LEN (status + enable) plus PM1_CNT_LEN.</summary>
    public const int WindowLength = EventBlockLength + ControlBlockLength;

    public const int EventBlockLength = 4;
    public const int ControlBlockLength = 2;

    // ACPI 6.4 Table 4.16: PM1 control register bits.
    private const ushort SciEnable = 1 << 0;
    private const int SleepTypeShift = 10;
    private const ushort SleepTypeMask = 0b111 << SleepTypeShift;
    private const ushort SleepEnable = 1 << 13;

    /// <summary>ACPI 6.4 Table 4.12: PM1 status bits that exist (TMR, BM, GBL, PWRBTN, SLPBTN, RTC, WAK).</summary>
    private const ushort StatusBits = 0b1000_0111_0011_0001;

    private readonly object _gate = new();
    private readonly IVmControl _vm;
    private readonly byte _softOffType;
    private ushort _status;
    private ushort _enable;
    private ushort _control = SciEnable;

    /// <param name="vm">Receives the power-off request.</param>
    /// <param name="softOffSleepType">The SLP_TYP value the DSDT's \_S5 object announces.</param>
    public AcpiPmRegisters(IVmControl vm, byte softOffSleepType)
    {
        _vm = vm;
        _softOffType = softOffSleepType;
    }

    public void Read(ulong offset, Span<byte> data)
    {
        Span<byte> regs = stackalloc byte[WindowLength];
        lock (_gate)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(regs, _status);
            BinaryPrimitives.WriteUInt16LittleEndian(regs[2..], _enable);
            BinaryPrimitives.WriteUInt16LittleEndian(regs[4..], _control);
        }

        data.Clear();
        for (int i = 0; i < data.Length && offset + (ulong)i < WindowLength; i++)
        {
            data[i] = regs[(int)offset + i];
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        bool powerOff = false;
        lock (_gate)
        {
            for (int i = 0; i < data.Length && offset + (ulong)i < WindowLength; i++)
            {
                int at = (int)offset + i;
                int shift = (at & 1) * 8;
                ushort bits = (ushort)(data[i] << shift);
                ushort lane = (ushort)(0xFF << shift);
                switch (at >> 1)
                {
                    case 0:
                        _status &= (ushort)~(bits & StatusBits); // write 1 to clear
                        break;
                    case 1:
                        _enable = (ushort)((_enable & ~lane) | bits);
                        break;
                    default:
                        ushort value = (ushort)((_control & ~lane) | bits);
                        if ((value & SleepEnable) != 0 && ((value & SleepTypeMask) >> SleepTypeShift) == _softOffType)
                        {
                            powerOff = true;
                        }

                        // SLP_EN is write-only (reads as 0); SCI_EN stays set: there is no legacy mode to return to.
                        _control = (ushort)((value & ~SleepEnable) | SciEnable);
                        break;
                }
            }
        }

        if (powerOff)
        {
            _vm.RequestStop(VmStopReason.PowerOff, 0, "ACPI S5: the guest set SLP_EN in PM1a_CNT");
        }
    }
}
