// Boots the default guest image under QEMU (TCG, never KVM: on this host KVM emulates guest kernel code slowly) so
// the image is checked against a reference VMM, independent of Ringvisor's own machine. Serial console on stdio.
using System.Diagnostics;
using System.Text;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

internal sealed class QemuGuest : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private QemuGuest(Process process)
    {
        _process = process;
    }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static QemuGuest Start(GuestImagePaths image, string append, IEnumerable<string> extraArgs)
    {
        var psi = new ProcessStartInfo(HostTools.Find("qemu-system-x86_64")!)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string[] args =
        [
            "-accel", "tcg", "-M", "pc", "-m", "256", "-smp", "1",
            "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
            "-kernel", image.Kernel, "-initrd", image.Initrd, "-append", append,
        ];
        foreach (string a in args.Concat(extraArgs))
        {
            psi.ArgumentList.Add(a);
        }

        var guest = new QemuGuest(Process.Start(psi)!);
        guest.Pump(guest._process.StandardOutput);
        guest.Pump(guest._process.StandardError);
        return guest;
    }

    /// <summary>Waits until the console output contains <paramref name="text"/>; false on timeout or exit.</summary>
    public bool WaitFor(string text, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            if (Output.Contains(text, StringComparison.Ordinal))
            {
                return true;
            }

            if (_process.HasExited)
            {
                Thread.Sleep(200); // let the pumps drain
                return Output.Contains(text, StringComparison.Ordinal);
            }

            Thread.Sleep(50);
        }

        return false;
    }

    public void Send(string line)
    {
        _process.StandardInput.Write(line + "\n");
        _process.StandardInput.Flush();
    }

    /// <summary>True when QEMU exited (the guest powered off; -no-reboot also exits on reset) within the timeout.</summary>
    public bool WaitForExit(TimeSpan timeout, out int exitCode)
    {
        bool exited = _process.WaitForExit(timeout);
        exitCode = exited ? _process.ExitCode : -1;
        return exited;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    private void Pump(StreamReader reader)
    {
        var thread = new Thread(() =>
        {
            char[] buffer = new char[4096];
            int n;
            while ((n = reader.Read(buffer, 0, buffer.Length)) > 0)
            {
                lock (_output)
                {
                    _output.Append(buffer, 0, n);
                }
            }
        })
        {
            IsBackground = true,
        };
        thread.Start();
    }
}
