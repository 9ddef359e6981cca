// Whether the default guest image can be built on this host: either it is already cached, or apt's tools are
// installed and a Debian mirror answers. Probed once per test run.
using System.Diagnostics;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

internal static class DebianMirror
{
    private static readonly Lazy<string?> s_reason = new(Probe);

    /// <summary>Null when EnsureBuilt can work; otherwise why not.</summary>
    public static string? UnavailableReason => s_reason.Value;

    private static string? Probe()
    {
        if (DefaultGuestImage.TryGetCached() is not null)
        {
            return null;
        }

        foreach (string tool in new[] { "apt-get", "apt-cache", "dpkg-deb" })
        {
            if (HostTools.Find(tool) is null)
            {
                return $"'{tool}' is not installed: the default guest image is built from Debian packages";
            }
        }

        // The URIs apt would fetch: the kernel package's when apt already has lists, else the lists themselves.
        var uris = PrintUris(["--print-uris", "-qq", "download", "linux-image-cloud-amd64"]);
        if (uris.Count == 0)
        {
            if (!Environment.IsPrivilegedProcess)
            {
                return "apt has no package lists and 'apt-get update' needs root";
            }

            uris = PrintUris(["--print-uris", "-qq", "update"]);
        }

        if (uris.Count == 0)
        {
            return "apt-get --print-uris names no Debian mirror (no apt sources configured)";
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        string? last = null;
        foreach (string uri in uris.Take(4))
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Head, uri);
                using var response = http.Send(request);
                if ((int)response.StatusCode < 500)
                {
                    return null;
                }

                last = $"{uri}: HTTP {(int)response.StatusCode}";
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or NotSupportedException or InvalidOperationException)
            {
                last = $"{uri}: {e.Message}";
            }
        }

        return $"apt-get cannot reach a Debian mirror ({last})";
    }

    private static List<string> PrintUris(string[] args)
    {
        try
        {
            var (rc, stdout, _) = HostTools.Run("apt-get", args);
            if (rc != 0)
            {
                return [];
            }

            // Lines look like: 'http://deb.debian.org/debian/pool/...deb' file_name size hash
            return stdout.Split('\n')
                .Select(l => l.Trim())
                .Where(l => l.StartsWith("'http", StringComparison.Ordinal))
                .Select(l => l[1..l.IndexOf('\'', 1)])
                .ToList();
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            Debug.WriteLine(e);
            return [];
        }
    }
}
