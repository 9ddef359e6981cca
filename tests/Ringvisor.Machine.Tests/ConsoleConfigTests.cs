namespace Ringvisor.Machine.Tests;

public sealed class ConsoleConfigTests
{
    [Theory]
    [InlineData("unix=/tmp/a.sock", ConsoleBackendKind.UnixSocket, "/tmp/a.sock")]
    [InlineData("file=out.log", ConsoleBackendKind.File, "out.log")]
    [InlineData("file=a=b", ConsoleBackendKind.File, "a=b")]
    public void Parse_Valid_KindAndPath(string text, ConsoleBackendKind kind, string path)
    {
        var c = ConsoleConfig.Parse(text, out string? error);
        Assert.Null(error);
        Assert.Equal(new ConsoleConfig(kind, path), c);
    }

    [Theory]
    [InlineData("unix=", "missing path")]
    [InlineData("tcp=1234", "expected unix=PATH or file=PATH")]
    [InlineData("/tmp/a.sock", "expected unix=PATH or file=PATH")]
    public void Parse_Invalid_ErrorNamesTheOption(string text, string message)
    {
        Assert.Null(ConsoleConfig.Parse(text, out string? error));
        Assert.Contains("--virtio-console", error);
        Assert.Contains(message, error);
    }
}
