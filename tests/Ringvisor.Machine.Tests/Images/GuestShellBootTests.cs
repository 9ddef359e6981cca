using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

/// <summary>The default image's interactive shell under QEMU (a separate class so xUnit can run the boots in parallel).</summary>
public sealed class GuestShellBootTests
{
    private static readonly TimeSpan s_bootTimeout = TimeSpan.FromSeconds(120);

    [QemuBootFact]
    public void Boot_NoParameters_ShellAcceptsCommandsOverSerialAndExitPowersOff()
    {
        var image = DefaultGuestImage.EnsureBuilt(null);

        using var guest = QemuGuest.Start(image, image.DefaultCommandLine, []);

        Assert.True(guest.WaitFor(InitScript.ReadyLine, s_bootTimeout), "no ready line:\n" + guest.Output);
        Assert.True(guest.WaitFor("# ", s_bootTimeout), "no shell prompt:\n" + guest.Output);
        guest.Send("echo sum=$((40 + 2)); tty");
        Assert.True(guest.WaitFor("sum=42", s_bootTimeout), "shell did not run the command:\n" + guest.Output);
        Assert.True(guest.WaitFor("/dev/ttyS0", s_bootTimeout), "the shell's controlling terminal is not ttyS0:\n" + guest.Output);
        guest.Send("exit");
        Assert.True(guest.WaitForExit(s_bootTimeout, out int rc), "guest did not power off after exit:\n" + guest.Output);
        Assert.Equal(0, rc);
        Assert.Contains("ringvisor: shell exited; powering off", guest.Output, StringComparison.Ordinal);
    }
}
