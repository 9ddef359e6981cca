// Random bytes from the host kernel (getrandom(2), the urandom source). System.Security.Cryptography's
// RandomNumberGenerator goes through OpenSSL on Linux, and loading it (libcrypto, libssl, the crypto assembly and its
// native shim) cost ~5 MiB of the VMM's resident memory only to feed the guest's virtio-rng.
using System.Runtime.InteropServices;

namespace Ringvisor.Core.Native;

public static class HostRandom
{
    private const int EIntr = 4;

    /// <summary>Fills <paramref name="destination"/> with random bytes.</summary>
    /// <exception cref="IOException">The kernel refused (getrandom failed other than by a signal).</exception>
    public static unsafe void Fill(Span<byte> destination)
    {
        fixed (byte* p = destination)
        {
            int done = 0;
            while (done < destination.Length)
            {
                nint n = LibC.getrandom(p + done, (nuint)(destination.Length - done), 0);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == EIntr)
                    {
                        continue;
                    }

                    throw new IOException($"getrandom failed: errno {errno}");
                }

                done += (int)n;
            }
        }
    }
}
