using Ringvisor.Core.Vm;
using Ringvisor.Devices.Legacy;
using Ringvisor.Devices.Tests.Support;

namespace Ringvisor.Devices.Tests.Legacy;

public class I8042Tests
{
    private readonly RecordingVmControl _control = new();
    private readonly RecordingLine _kbd = new();
    private readonly RecordingLine _aux = new();
    private readonly I8042 _kbc;

    public I8042Tests() => _kbc = new I8042(_control, _kbd, _aux);

    private byte Status => _kbc.CommandPort.In8(0);

    private byte ReadData()
    {
        Assert.Equal(0x01, Status & 0x01); // OBF must be set before a byte is there to read
        return _kbc.DataPort.In8(0);
    }

    [Fact]
    public void SelfTest_Command_Returns55()
    {
        _kbc.CommandPort.Out8(0, 0xAA);
        Assert.Equal(0x55, ReadData());
        Assert.Equal(0, Status & 0x01);
        Assert.Equal(0x04, Status & 0x04); // system flag
    }

    [Fact]
    public void InterfaceTest_Command_Returns00()
    {
        _kbc.CommandPort.Out8(0, 0xAB);
        Assert.Equal(0x00, ReadData());
    }

    [Fact]
    public void CommandByte_WriteThenRead_RoundTrips()
    {
        _kbc.CommandPort.Out8(0, 0x60);
        _kbc.DataPort.Out8(0, 0x47);
        _kbc.CommandPort.Out8(0, 0x20);
        Assert.Equal(0x47, ReadData());
    }

    [Fact]
    public void OutputPort_WriteThenRead_RoundTrips()
    {
        _kbc.CommandPort.Out8(0, 0xD1);
        _kbc.DataPort.Out8(0, 0x03);
        _kbc.CommandPort.Out8(0, 0xD0);
        Assert.Equal(0x03, ReadData());
        Assert.Empty(_control.Stops);
    }

    [Fact]
    public void PulseCommand_Fe_RequestsReset()
    {
        _kbc.CommandPort.Out8(0, 0xFE);
        Assert.Equal([(VmStopReason.Reset, 0)], _control.Stops);
    }

    [Fact]
    public void PulseCommand_WithoutResetLine_DoesNotReset()
    {
        _kbc.CommandPort.Out8(0, 0xFF); // pulses no line
        Assert.Empty(_control.Stops);
    }

    [Fact]
    public void OutputPort_ResetBitCleared_RequestsReset()
    {
        _kbc.CommandPort.Out8(0, 0xD1);
        _kbc.DataPort.Out8(0, 0x02);
        Assert.Equal([(VmStopReason.Reset, 0)], _control.Stops);
    }

    [Fact]
    public void KeyboardReset_Command_AcksAndPassesBat()
    {
        _kbc.DataPort.Out8(0, 0xFF);
        Assert.Equal(0xFA, ReadData());
        Assert.Equal(0xAA, ReadData());
    }

    [Fact]
    public void KeyboardResponse_InterruptEnabled_RaisesIrq1PerByte()
    {
        _kbc.DataPort.Out8(0, 0xF2); // identify: FA AB 83
        Assert.True(_kbd.Level);
        int edges = _kbd.RisingEdges;
        ReadData();
        Assert.Equal(edges + 1, _kbd.RisingEdges); // the next byte is a new edge
        ReadData();
        ReadData();
        Assert.False(_kbd.Level);
    }

    [Fact]
    public void AuxWrite_NoMouse_AnswersFromAuxPort()
    {
        _kbc.CommandPort.Out8(0, 0xD4);
        _kbc.DataPort.Out8(0, 0xFF);
        Assert.Equal(0x21, Status & 0x21); // OBF with the AUX data flag
        Assert.Equal(0xFE, _kbc.DataPort.In8(0));
    }

    [Fact]
    public void SaveRestore_RoundTrip_KeepsOutputQueue()
    {
        _kbc.CommandPort.Out8(0, 0xAA);
        var copy = new I8042(new RecordingVmControl(), new RecordingLine(), new RecordingLine());
        copy.Restore(_kbc.Save());
        Assert.Equal(0x55, copy.DataPort.In8(0));
    }

    [Fact]
    public void LinuxStyleProbe_Sequence_FindsControllerAuxLoopAndKeyboard()
    {
        // drivers/input/serio/i8042.c order: flush, self-test, CTR read/write, AUX loop, AUX disable/enable
        // checks through the CTR, then atkbd's identify through the keyboard port.
        while ((Status & 0x01) != 0)
        {
            _kbc.DataPort.In8(0);
        }

        _kbc.CommandPort.Out8(0, 0xAA);
        Assert.Equal(0x55, ReadData());

        _kbc.CommandPort.Out8(0, 0x20);
        byte ctr = ReadData();
        _kbc.CommandPort.Out8(0, 0x60);
        _kbc.DataPort.Out8(0, (byte)((ctr & ~0x03) | 0x30)); // interrupts off, both ports disabled

        _kbc.CommandPort.Out8(0, 0xD3);
        _kbc.DataPort.Out8(0, 0x5A);
        Assert.Equal(0x21, Status & 0x21);
        Assert.Equal(0x5A, ReadData());

        _kbc.CommandPort.Out8(0, 0xA8);
        _kbc.CommandPort.Out8(0, 0x20);
        Assert.Equal(0, ReadData() & 0x20);
        _kbc.CommandPort.Out8(0, 0xA7);
        _kbc.CommandPort.Out8(0, 0x20);
        Assert.Equal(0x20, ReadData() & 0x20);

        _kbc.CommandPort.Out8(0, 0x60);
        _kbc.DataPort.Out8(0, 0x47); // translate, system flag, keyboard interrupt on
        _kbc.DataPort.Out8(0, 0xF2);
        Assert.Equal(0xFA, ReadData());
        Assert.Equal(0xAB, ReadData());
        Assert.Equal(0x83, ReadData());
        Assert.Empty(_control.Stops);
    }
}
