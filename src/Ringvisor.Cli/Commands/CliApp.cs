// The command tree. System.CommandLine gives us parsing, --help and error messages for free, which is why it is
// used instead of hand-rolled argument parsing.
using System.CommandLine;

namespace Ringvisor.Cli.Commands;

internal static class CliApp
{
    public static int Run(string[] args)
    {
        var root = new RootCommand("Ringvisor: an x86-64 virtual machine monitor (kvm and bt engines)");
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(ImageCommand.Create());
        root.Subcommands.Add(SwitchCommand.Create());
        return root.Parse(args).Invoke();
    }

    /// <summary>Prints one error line to stderr and returns the status to exit with.</summary>
    public static int Fail(string message, int status = 1)
    {
        Console.Out.Flush();
        Console.Error.WriteLine($"ringvisor: {message}");
        return status;
    }
}
