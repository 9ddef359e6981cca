// Cryptographically secure random bytes for devices (virtio-rng). On Linux straight from the kernel (getrandom(2)),
// as QEMU's default rng backend does: .NET's RandomNumberGenerator there goes through OpenSSL, whose libraries cost a
// VM process ~5.6 MiB of resident memory. Elsewhere, or where the call is missing, RandomNumberGenerator.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Ringvisor.Core.Native;

public static class HostRandom
{
    private const int Eintr = 4;

    private static bool s_useBcl = !OperatingSystem.IsLinux();

    /// <summary>Fills <paramref name="destination"/> with cryptographically secure random bytes.</summary>
    public static unsafe void Fill(Span<byte> destination)
    {
        if (!Volatile.Read(ref s_useBcl))
        {
            try
            {
                fixed (byte* p = destination)
                {
                    int done = 0;
                    while (done < destination.Length)
                    {
                        nint n = LibC.getrandom(p + done, (nuint)(destination.Length - done), 0);
                        if (n > 0)
                        {
                            done += (int)n;
                        }
                        else if (n == 0 || Marshal.GetLastPInvokeError() != Eintr)
                        {
                            break; // interrupted calls are retried
                        }
                    }

                    if (done == destination.Length)
                    {
                        return;
                    }
                }
            }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
            {
            }

            // No usable getrandom (an old kernel: ENOSYS): the BCL from now on.
            Volatile.Write(ref s_useBcl, true);
        }

        FillFromBcl(destination);
    }

    // Separate so the JIT loads System.Security.Cryptography only when it is used.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void FillFromBcl(Span<byte> destination) => RandomNumberGenerator.Fill(destination);
}
