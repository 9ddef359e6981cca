// A VMM (or switch) run as a child process whose stdout lines are time-stamped on the host as they arrive, against a
// clock shared by every process of one measurement, so markers printed by two different guests can be subtracted.
using System.Diagnostics;

namespace Ringvisor.Bench.Io;

internal sealed class ConsoleProcess : IDisposable
{
    private const int TailLines = 40;

    private readonly Process _process;
    private readonly Stopwatch _clock;
    private readonly List<(string Line, double Seconds)> _lines = [];
    private readonly object _gate = new(); // Monitor.Wait/PulseAll: lines arriving wake WaitFor
    private readonly Thread _reader;
    private bool _ended;

    private ConsoleProcess(Process process, Stopwatch clock, string label)
    {
        _process = process;
        _clock = clock;
        Label = label;
        _reader = new Thread(ReadLines) { IsBackground = true, Name = $"console {label}" };
        _reader.Start();
        _ = _process.StandardError.ReadToEndAsync();
    }

    public string Label { get; }

    public bool HasExited => _process.HasExited;

    public static ConsoleProcess Start(string label, string exe, IEnumerable<string> args, Stopwatch clock, IReadOnlyDictionary<string, string>? environment = null)
    {
        // stdin is redirected and left open so a guest shell (if any) sees no EOF and QEMU's stdio chardev stays quiet.
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {exe}");
        return new ConsoleProcess(p, clock, label);
    }

    /// <summary>
    /// Host-clock seconds at which a line containing <paramref name="marker"/> arrived, waiting up to
    /// <paramref name="limit"/>; null when the process ended or the limit passed without it.
    /// </summary>
    public double? WaitFor(string marker, TimeSpan limit)
    {
        var deadline = Stopwatch.StartNew();
        lock (_gate)
        {
            while (true)
            {
                foreach (var (line, seconds) in _lines)
                {
                    if (line.Contains(marker, StringComparison.Ordinal))
                    {
                        return seconds;
                    }
                }

                var left = limit - deadline.Elapsed;
                if (_ended || left <= TimeSpan.Zero)
                {
                    return null;
                }

                Monitor.Wait(_gate, left < TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1));
            }
        }
    }

    /// <summary>The first line containing <paramref name="marker"/>, if it has arrived.</summary>
    public string? LineWith(string marker)
    {
        lock (_gate)
        {
            return _lines.Select(l => l.Line).FirstOrDefault(l => l.Contains(marker, StringComparison.Ordinal));
        }
    }

    /// <summary>The last lines of output, for reporting why a marker never came.</summary>
    public string Tail()
    {
        lock (_gate)
        {
            return string.Join(Environment.NewLine, _lines.Skip(Math.Max(0, _lines.Count - TailLines)).Select(l => "  | " + l.Line));
        }
    }

    /// <summary>Waits for the process to end by itself (the guest powering off), then kills it if it has not.</summary>
    public void Finish(TimeSpan limit)
    {
        if (!_process.WaitForExit(limit))
        {
            Kill();
        }
    }

    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void ReadLines()
    {
        try
        {
            string? line;
            while ((line = _process.StandardOutput.ReadLine()) is not null)
            {
                double t = _clock.Elapsed.TotalSeconds;
                lock (_gate)
                {
                    _lines.Add((line, t));
                    Monitor.PulseAll(_gate);
                }
            }
        }
        catch (IOException)
        {
            // The pipe broke because the process was killed; what arrived is kept.
        }
        finally
        {
            lock (_gate)
            {
                _ended = true;
                Monitor.PulseAll(_gate);
            }
        }
    }
}
