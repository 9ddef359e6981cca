using Ringvisor.Net.Backends;
using Ringvisor.Net.Switching;

namespace Ringvisor.Net.Tests.Switching;

public sealed class VirtualSwitchServerTests
{
    [Fact]
    public void Run_ServesNamedSwitchUntilCancelled()
    {
        string name = $"rvtest-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40];
        using var cts = new CancellationTokenSource();
        var log = new StringWriter();
        int result = -1;
        var server = new Thread(() => result = VirtualSwitchServer.Run(name, cts.Token, TextWriter.Synchronized(log)));
        server.Start();
        string path = SwitchSocketPath.For(name);
        VirtualSwitchTests.WaitFor(() => File.Exists(path));
        using (var c = SwitchPortBackend.ConnectToSwitch(name))
        {
            Assert.True(c.LinkUp);
        }

        cts.Cancel();
        Assert.True(server.Join(10_000));
        Assert.Equal(0, result);
        Assert.False(File.Exists(path));
        Assert.Contains(path, log.ToString());
    }
}
