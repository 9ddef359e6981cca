// SHA-256 (FIPS 180-4) in managed code, for the image manifest's /init fingerprint, which every `run` of the default
// image checks. System.Security.Cryptography's SHA256 loads OpenSSL (libcrypto, libssl, the crypto assembly and its
// native shim): ~5 MiB of the VMM's resident memory for hashing a few KiB of text. Not for anything secret (no
// constant-time care).
using System.Buffers.Binary;
using System.Numerics;

namespace Ringvisor.Machine.Images;

internal static class Sha256
{
    private static readonly uint[] s_k = FractionBits(64, Math.Cbrt);
    private static readonly uint[] s_initial = FractionBits(8, Math.Sqrt);

    /// <summary>The 32-byte digest of <paramref name="data"/>.</summary>
    public static byte[] Hash(ReadOnlySpan<byte> data)
    {
        Span<uint> h = stackalloc uint[8];
        s_initial.CopyTo(h);
        Span<uint> w = stackalloc uint[64];
        int full = data.Length / 64;
        for (int b = 0; b < full; b++)
        {
            Compress(h, w, data.Slice(b * 64, 64));
        }

        // Padding: 0x80, zeros, then the message length in bits (big-endian) ending a block.
        Span<byte> tail = stackalloc byte[128];
        tail.Clear();
        int rest = data.Length - (full * 64);
        data[(full * 64)..].CopyTo(tail);
        tail[rest] = 0x80;
        int tailLength = rest + 9 <= 64 ? 64 : 128;
        BinaryPrimitives.WriteUInt64BigEndian(tail[(tailLength - 8)..], (ulong)data.Length * 8);
        for (int off = 0; off < tailLength; off += 64)
        {
            Compress(h, w, tail.Slice(off, 64));
        }

        var digest = new byte[32];
        for (int i = 0; i < 8; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(digest.AsSpan(i * 4), h[i]);
        }

        return digest;
    }

    private static void Compress(Span<uint> h, Span<uint> w, ReadOnlySpan<byte> block)
    {
        for (int t = 0; t < 16; t++)
        {
            w[t] = BinaryPrimitives.ReadUInt32BigEndian(block[(t * 4)..]);
        }

        for (int t = 16; t < 64; t++)
        {
            uint s0 = BitOperations.RotateRight(w[t - 15], 7) ^ BitOperations.RotateRight(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint s1 = BitOperations.RotateRight(w[t - 2], 17) ^ BitOperations.RotateRight(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }

        uint a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (int t = 0; t < 64; t++)
        {
            uint sum1 = BitOperations.RotateRight(e, 6) ^ BitOperations.RotateRight(e, 11) ^ BitOperations.RotateRight(e, 25);
            uint choose = (e & f) ^ (~e & g);
            uint t1 = hh + sum1 + choose + s_k[t] + w[t];
            uint sum0 = BitOperations.RotateRight(a, 2) ^ BitOperations.RotateRight(a, 13) ^ BitOperations.RotateRight(a, 22);
            uint majority = (a & b) ^ (a & c) ^ (b & c);
            uint t2 = sum0 + majority;
            hh = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }

        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
        h[5] += f;
        h[6] += g;
        h[7] += hh;
    }

    // The standard's constants: the first 32 bits of the fractional parts of the cube roots (K) and square roots
    // (initial hash) of the first primes. A double carries them with ~15 bits to spare.
    private static uint[] FractionBits(int count, Func<double, double> root)
    {
        var values = new uint[count];
        int found = 0;
        for (int n = 2; found < count; n++)
        {
            bool prime = true;
            for (int p = 2; p * p <= n; p++)
            {
                if (n % p == 0)
                {
                    prime = false;
                    break;
                }
            }

            if (prime)
            {
                double r = root(n);
                values[found++] = (uint)((r - Math.Floor(r)) * 4294967296.0);
            }
        }

        return values;
    }
}
