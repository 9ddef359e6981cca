using Ringvisor.Cli.Terminal;

namespace Ringvisor.Cli.Tests;

public sealed class ConsoleMuxTests
{
    private sealed class Sink
    {
        public List<byte> Guest { get; } = [];

        public int Quits { get; set; }

        public ConsoleMux Mux() => new(b => Guest.AddRange(b.ToArray()), () => Quits++, _ => { });
    }

    [Fact]
    public void Feed_PlainBytes_PassThrough()
    {
        var s = new Sink();
        s.Mux().Feed("ls\r"u8);
        Assert.Equal("ls\r"u8.ToArray(), s.Guest);
    }

    [Fact]
    public void Feed_CtrlAX_QuitsAndDropsTheRest()
    {
        var s = new Sink();
        var m = s.Mux();
        m.Feed([(byte)'a', 0x01, (byte)'x', (byte)'b']);
        Assert.Equal(1, s.Quits);
        Assert.Equal([(byte)'a'], s.Guest);
        Assert.True(m.QuitRequested);
    }

    [Fact]
    public void Feed_EscapeSplitAcrossReads_StillQuits()
    {
        var s = new Sink();
        var m = s.Mux();
        m.Feed([0x01]);
        m.Feed([(byte)'X']);
        Assert.Equal(1, s.Quits);
        Assert.Empty(s.Guest);
    }

    [Fact]
    public void Feed_CtrlACtrlA_SendsOneCtrlA()
    {
        var s = new Sink();
        s.Mux().Feed([0x01, 0x01, (byte)'z']);
        Assert.Equal([0x01, (byte)'z'], s.Guest);
        Assert.Equal(0, s.Quits);
    }

    [Fact]
    public void Feed_CtrlC_GoesToGuest()
    {
        var s = new Sink();
        s.Mux().Feed([0x03]);
        Assert.Equal([0x03], s.Guest);
    }
}
