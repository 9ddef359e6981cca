// The busybox sh scripts the default guest runs with rv.init=/mnt/vda/io.sh (docs/guest-image.md) for the I/O
// benchmark. Each prints "rv-io: <marker> <uptime>" lines; the host times the markers as they arrive.
// The uptime is read with the shell's own `read` so that taking it forks no process between two markers.
using System.Globalization;

namespace Ringvisor.Bench.Io;

internal static class IoScripts
{
    public const string MarkerPrefix = "rv-io: ";

    /// <summary>Path of the script inside the guest: the first virtio disk is mounted at /mnt/vda by /init.</summary>
    public const string GuestPath = "/mnt/vda/io.sh";

    public const string FileName = "io.sh";

    public const int Port = 5000;

    private const string Header =
        "#!/bin/sh\n" +
        "mark() { read -r rv_up rv_rest < /proc/uptime; echo \"rv-io: $1 $rv_up\"; }\n";

    /// <summary>
    /// Sequential write of <paramref name="mib"/> MiB to the raw scratch disk /dev/vdb (fsync before dd ends), then,
    /// with the page cache dropped, a sequential read of the same blocks.
    /// </summary>
    public static string Block(int mib) =>
        Header +
        "if [ ! -b /dev/vdb ]; then echo \"rv-io: error no /dev/vdb\"; exit 1; fi\n" +
        "sync; echo 3 > /proc/sys/vm/drop_caches\n" +
        "mark write-start\n" +
        $"dd if=/dev/zero of=/dev/vdb bs=1M count={I(mib)} conv=fsync 2>/dev/null || echo \"rv-io: error write\"\n" +
        "mark write-end\n" +
        "echo 3 > /proc/sys/vm/drop_caches\n" +
        "mark read-start\n" +
        $"dd if=/dev/vdb of=/dev/null bs=1M count={I(mib)} 2>/dev/null || echo \"rv-io: error read\"\n" +
        "mark read-end\n";

    /// <summary>
    /// TCP receiver: listens, takes the first byte on its own so the clock starts when data starts to flow (not at
    /// boot or accept), counts the rest (so a broken transfer is detected rather than timed), marks end of stream.
    /// The host starts the sender VM only after "listening", and that VM takes far longer to boot than nc to bind.
    /// </summary>
    public static string Receiver() =>
        Header +
        "mark listening\n" +
        $"nc -l -p {I(Port)} | {{ dd bs=1 count=1 of=/dev/null 2>/dev/null; mark recv-start; wc -c > /tmp/rv-bytes; }}\n" +
        "mark recv-end\n" +
        "echo \"rv-io: bytes $(( $(cat /tmp/rv-bytes) + 1 ))\"\n";

    /// <summary>TCP sender: waits until the receiver answers ping (ARP resolved), then streams zeros to it.</summary>
    public static string Sender(string peer, int mib) =>
        Header +
        "rv_i=0\n" +
        $"until ping -c 1 -W 1 {peer} >/dev/null 2>&1; do\n" +
        "  rv_i=$((rv_i + 1))\n" +
        "  if [ $rv_i -ge 60 ]; then echo \"rv-io: error peer unreachable\"; exit 1; fi\n" +
        "done\n" +
        "mark send-start\n" +
        $"dd if=/dev/zero bs=1M count={I(mib)} 2>/dev/null | nc {peer} {I(Port)}\n" +
        "mark send-end\n";

    /// <summary>Guest uptime printed with a marker, or null if the marker line is missing or malformed.</summary>
    public static double? UptimeOf(string? line)
    {
        if (line is null)
        {
            return null;
        }

        var parts = line[(line.IndexOf(MarkerPrefix, StringComparison.Ordinal) + MarkerPrefix.Length)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return parts.Length >= 2 && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : null;
    }

    private static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
}
