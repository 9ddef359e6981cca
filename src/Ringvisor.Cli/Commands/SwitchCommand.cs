// `ringvisor switch NAME`: run a virtual L2 switch that VMs started with --net switch=NAME join over a UNIX socket.
using System.CommandLine;
using System.Runtime.InteropServices;
using Ringvisor.Net.Switching;

namespace Ringvisor.Cli.Commands;

internal static class SwitchCommand
{
    public static Command Create()
    {
        var name = new Argument<string>("NAME") { Description = "Switch name ([A-Za-z0-9._-], up to 64 characters)." };
        var cmd = new Command("switch", "Run a virtual Ethernet switch for VMs started with --net switch=NAME (Ctrl-C stops it).") { name };
        cmd.SetAction(pr =>
        {
            string n = pr.GetValue(name)!;
            using var cts = new CancellationTokenSource();
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; cts.Cancel(); });
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; cts.Cancel(); });
            try
            {
                return VirtualSwitchServer.Run(n, cts.Token, Console.Error);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return CliApp.Fail($"switch {n}: {e.Message}");
            }
        });
        return cmd;
    }
}
