using System.Diagnostics;

namespace Ringvisor.Cli.Tests;

/// <summary>Runs the built ringvisor CLI (copied next to the tests) as a child process, as a user would.</summary>
internal static class CliProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null, IDictionary<string, string>? env = null)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "ringvisor.dll");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(dll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        if (env is not null)
        {
            foreach (var kv in env)
            {
                psi.Environment[kv.Key] = kv.Value;
            }
        }

        using var p = Process.Start(psi)!;
        var outTask = p.StandardOutput.ReadToEndAsync();
        var errTask = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
        }

        p.StandardInput.Close();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            throw new TimeoutException($"ringvisor {string.Join(' ', args)} did not exit; stderr: {errTask.Result}");
        }

        return new Result(p.ExitCode, outTask.Result, errTask.Result);
    }
}
