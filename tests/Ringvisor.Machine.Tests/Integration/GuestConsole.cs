using System.Text;

namespace Ringvisor.Machine.Tests.Integration;

/// <summary>Collects a guest's serial output and lets a test wait for text in it (an expect-style driver).</summary>
internal sealed class GuestConsole
{
    private readonly StringBuilder _all = new();
    private readonly object _gate = new();
    private int _consumed;

    public void Write(ReadOnlySpan<byte> bytes)
    {
        lock (_gate)
        {
            _all.Append(Encoding.Latin1.GetString(bytes));
            Monitor.PulseAll(_gate);
        }
    }

    public string Text
    {
        get
        {
            lock (_gate)
            {
                return _all.ToString();
            }
        }
    }

    /// <summary>
    /// Waits until <paramref name="needle"/> appears after the previous match and returns the text between the
    /// previous match and the end of this one. Fails the test (with the console tail) on timeout or when
    /// <paramref name="stopped"/> reports the VM ended; <paramref name="describe"/> adds a line to the failure message
    /// (the engine and the VM's stop reason, so an engine error is not mistaken for a slow guest).
    /// </summary>
    public string WaitFor(string needle, TimeSpan timeout, Func<bool>? stopped = null, Func<string?>? describe = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_gate)
        {
            while (true)
            {
                string all = _all.ToString();
                int at = all.IndexOf(needle, _consumed, StringComparison.Ordinal);
                if (at >= 0)
                {
                    string between = all[_consumed..(at + needle.Length)];
                    _consumed = at + needle.Length;
                    return between;
                }

                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || (stopped?.Invoke() ?? false))
                {
                    string tail = all.Length > 3000 ? all[^3000..] : all;
                    bool ended = stopped?.Invoke() ?? false;
                    string why = ended ? "the VM stopped" : $"timed out after {timeout.TotalSeconds:0} s";
                    string context = describe?.Invoke() is { Length: > 0 } d ? $"{d}\n" : "";
                    Assert.Fail($"guest console never showed '{needle}' ({why}); {context}console tail:\n{tail}");
                }

                Monitor.Wait(_gate, left < TimeSpan.FromMilliseconds(500) ? left : TimeSpan.FromMilliseconds(500));
            }
        }
    }
}
