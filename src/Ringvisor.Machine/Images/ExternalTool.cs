// Runs the host tools the image builder relies on (apt-get, apt-cache, dpkg-deb, mkfs.ext4, xz, zstd) and turns
// every failure — tool missing, non-zero exit, timeout — into one GuestImageBuildException with the command line
// and the tail of its error output, so the user sees what to fix.
using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace Ringvisor.Machine.Images;

internal static class ExternalTool
{
    private const int ErrorTailLines = 12;

    // Administrative tools live in sbin, which a non-root PATH often lacks.
    private static readonly string[] s_extraSearchDirectories = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

    /// <summary>The tool's full path, or null when it is not installed.</summary>
    public static string? Find(string tool)
    {
        if (tool.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(tool) ? tool : null;
        }

        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(s_extraSearchDirectories);
        foreach (string dir in dirs)
        {
            string candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>Runs a tool to completion and returns its standard output.</summary>
    /// <param name="what">What the step is for, in the user's terms ("download the kernel package").</param>
    /// <exception cref="GuestImageBuildException">The tool is missing, failed or timed out.</exception>
    public static string Run(string what, string tool, IEnumerable<string> arguments, string? workingDirectory = null,
        TimeSpan? timeout = null, bool allowFailure = false)
    {
        var result = TryRun(tool, arguments, workingDirectory, timeout);
        if (result.ExitCode != 0 && !allowFailure)
        {
            throw new GuestImageBuildException(Describe(what, tool, arguments, result));
        }

        return result.StandardOutput;
    }

    /// <summary>Runs a tool and returns its exit status and output; throws only when it cannot be started or times out.</summary>
    public static ToolResult TryRun(string tool, IEnumerable<string> arguments, string? workingDirectory = null, TimeSpan? timeout = null)
    {
        string? path = Find(tool) ?? throw new GuestImageBuildException(
            $"'{tool}' is not installed; run scripts/install-deps.sh (Debian 12) to install the image builder's tools");
        var args = arguments.ToList();
        var psi = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        // Tools must not stop to ask questions (apt, debconf) or translate the messages we show.
        psi.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        psi.Environment["LC_ALL"] = "C";

        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new GuestImageBuildException($"could not start '{path}'");
        }
        catch (Win32Exception e)
        {
            throw new GuestImageBuildException($"could not start '{path}': {e.Message}", e);
        }

        using (process)
        {
            process.StandardInput.Close();
            var stdout = new StringBuilder();
            var stderr = new StringBuilder();
            process.OutputDataReceived += (_, e) => Append(stdout, e.Data);
            process.ErrorDataReceived += (_, e) => Append(stderr, e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var limit = timeout ?? TimeSpan.FromMinutes(10);
            if (!process.WaitForExit(limit))
            {
                try
                {
                    process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                    // It exited between the timeout and the kill.
                }

                throw new GuestImageBuildException($"'{CommandLine(tool, args)}' did not finish within {limit.TotalSeconds:0} s");
            }

            process.WaitForExit(); // drains the asynchronous output readers
            lock (stdout)
            {
                lock (stderr)
                {
                    return new ToolResult(process.ExitCode, stdout.ToString(), stderr.ToString());
                }
            }
        }
    }

    /// <summary>A stdout-to-file run for decompressors (binary output): "xz -dc file".</summary>
    public static byte[] RunBinary(string what, string tool, IEnumerable<string> arguments)
    {
        string? path = Find(tool) ?? throw new GuestImageBuildException(
            $"'{tool}' is not installed but is needed to {what}; run scripts/install-deps.sh");
        var args = arguments.ToList();
        var psi = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi) ?? throw new GuestImageBuildException($"could not start '{path}'");
        var errTask = process.StandardError.ReadToEndAsync();
        using var ms = new MemoryStream();
        process.StandardOutput.BaseStream.CopyTo(ms);
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new GuestImageBuildException(Describe(what, tool, args, new ToolResult(process.ExitCode, string.Empty, errTask.Result)));
        }

        return ms.ToArray();
    }

    public static string Describe(string what, string tool, IEnumerable<string> arguments, ToolResult result)
    {
        string output = result.StandardError.Trim().Length > 0 ? result.StandardError : result.StandardOutput;
        var tail = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(ErrorTailLines);
        return $"could not {what}: '{CommandLine(tool, arguments)}' exited with status {result.ExitCode}" +
               (output.Trim().Length > 0 ? ":\n  " + string.Join("\n  ", tail) : string.Empty);
    }

    private static string CommandLine(string tool, IEnumerable<string> args) =>
        string.Join(' ', new[] { tool }.Concat(args.Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"\"{a}\"" : a)));

    private static void Append(StringBuilder sb, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (sb)
        {
            sb.Append(line).Append('\n');
        }
    }
}
