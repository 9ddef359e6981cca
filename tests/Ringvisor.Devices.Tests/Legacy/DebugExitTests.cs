using Ringvisor.Core.Vm;
using Ringvisor.Devices.Legacy;
using Ringvisor.Devices.Tests.Support;

namespace Ringvisor.Devices.Tests.Legacy;

public class DebugExitTests
{
    [Theory]
    [InlineData(new byte[] { 0x00 }, 1)]
    [InlineData(new byte[] { 0x01 }, 3)]
    [InlineData(new byte[] { 0x10, 0x00 }, 0x21)]
    [InlineData(new byte[] { 0x00, 0x01, 0x00, 0x00 }, 0x201)]
    public void Write_AnyWidth_StopsWithShiftedStatus(byte[] value, int expectedStatus)
    {
        var control = new RecordingVmControl();
        new DebugExit(control).Write(0, value);
        Assert.Equal([(VmStopReason.DebugExit, expectedStatus)], control.Stops);
    }

    [Fact]
    public void ExitStatusFor_Value_IsShiftedLeftWithLowBitSet()
    {
        for (uint v = 0; v < 300; v += 37)
        {
            Assert.Equal((int)((v * 2) + 1), DebugExit.ExitStatusFor(v));
        }
    }
}
