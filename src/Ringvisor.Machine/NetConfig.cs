using System.Globalization;

namespace Ringvisor.Machine;

/// <summary>How a virtio-net NIC reaches the outside.</summary>
public enum NetBackendKind
{
    /// <summary>A port on a Ringvisor virtual switch (`ringvisor switch NAME`).</summary>
    Switch,

    /// <summary>A Linux TAP interface.</summary>
    Tap,
}

/// <summary>A virtio-net NIC: --net switch=NAME[,mac=52:54:..] or --net tap=IFNAME[,mac=..].</summary>
public sealed record NetConfig(NetBackendKind Kind, string Target, byte[]? Mac)
{
    public static NetConfig? Parse(string text, out string? error)
    {
        error = null;
        NetBackendKind? kind = null;
        string? target = null;
        byte[]? mac = null;
        foreach (var part in text.Split(','))
        {
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            string key = eq < 0 ? part : part[..eq];
            string value = eq < 0 ? "" : part[(eq + 1)..];
            switch (key)
            {
                case "switch" or "tap" when value.Length > 0 && kind is null:
                    kind = key == "switch" ? NetBackendKind.Switch : NetBackendKind.Tap;
                    target = value;
                    break;
                case "mac" when TryParseMac(value, out var m):
                    mac = m;
                    break;
                case "mac":
                    error = $"--net '{text}': '{value}' is not a unicast MAC address like 52:54:00:12:34:56";
                    return null;
                default:
                    error = $"--net '{text}': expected switch=NAME or tap=IFNAME, optionally with ,mac=XX:XX:XX:XX:XX:XX";
                    return null;
            }
        }

        if (kind is null)
        {
            error = $"--net '{text}': expected switch=NAME or tap=IFNAME";
            return null;
        }

        return new NetConfig(kind.Value, target!, mac);
    }

    /// <summary>Six colon-separated hex bytes; multicast addresses (bit 0 of the first byte) are refused.</summary>
    public static bool TryParseMac(string text, out byte[] mac)
    {
        mac = new byte[6];
        var parts = text.Split(':');
        if (parts.Length != 6)
        {
            return false;
        }

        for (int i = 0; i < 6; i++)
        {
            if (parts[i].Length != 2 || !byte.TryParse(parts[i], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out mac[i]))
            {
                return false;
            }
        }

        return (mac[0] & 1) == 0;
    }
}
