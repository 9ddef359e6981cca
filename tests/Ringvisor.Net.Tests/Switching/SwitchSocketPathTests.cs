using Ringvisor.Net.Switching;

namespace Ringvisor.Net.Tests.Switching;

public sealed class SwitchSocketPathTests
{
    [Fact]
    public void For_ValidName_IsUnderTheUsersSwitchDirectory()
    {
        string p = SwitchSocketPath.For("lan0");
        Assert.Equal(Path.Combine(SwitchSocketPath.Directory(), "lan0.sock"), p);
        string? xdg = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        Assert.StartsWith(string.IsNullOrEmpty(xdg) ? "/tmp/ringvisor-" : Path.Combine(xdg, "ringvisor"), p);
    }

    [Theory]
    [InlineData("")]
    [InlineData("..")]
    [InlineData("a/b")]
    [InlineData("a b")]
    [InlineData("ünïcode")]
    public void For_InvalidName_Throws(string name)
    {
        Assert.Throws<ArgumentException>(() => SwitchSocketPath.For(name));
    }
}
