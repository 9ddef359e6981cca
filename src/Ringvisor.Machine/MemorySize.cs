using System.Globalization;

namespace Ringvisor.Machine;

/// <summary>Parses sizes like QEMU's -m: "256M", "1G", "512" (MiB when no suffix), "64K", "1T".</summary>
public static class MemorySize
{
    public static bool TryParse(string text, out ulong bytes, out string? error)
    {
        bytes = 0;
        error = null;
        string t = text.Trim();
        if (t.Length == 0)
        {
            error = "empty size";
            return false;
        }

        ulong mult = 1UL << 20;
        char last = char.ToUpperInvariant(t[^1]);
        if (char.IsLetter(last))
        {
            mult = last switch
            {
                'K' => 1UL << 10,
                'M' => 1UL << 20,
                'G' => 1UL << 30,
                'T' => 1UL << 40,
                _ => 0,
            };
            if (mult == 0)
            {
                error = $"'{text}': unknown size suffix '{t[^1]}' (use K, M, G or T)";
                return false;
            }

            t = t[..^1];
            if (t.EndsWith('i') || t.EndsWith('I'))
            {
                t = t[..^1];
            }
        }

        if (!ulong.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) || n == 0)
        {
            error = $"'{text}' is not a positive size";
            return false;
        }

        if (n > ulong.MaxValue / mult)
        {
            error = $"'{text}' is too large";
            return false;
        }

        bytes = n * mult;
        return true;
    }
}
