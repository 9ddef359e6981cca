// The managed SHA-256 behind the image manifest's /init fingerprint must give the same digests as the framework's
// (OpenSSL-backed) implementation, which wrote the fingerprints of existing image caches.
using System.Security.Cryptography;
using System.Text;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

public sealed class Sha256Tests
{
    [Fact]
    public void EveryLengthAroundTheBlockAndPaddingEdges_SameDigestAsFramework()
    {
        var rng = new Random(1234);
        for (int length = 0; length <= 300; length++)
        {
            var data = new byte[length];
            rng.NextBytes(data);
            Assert.Equal(SHA256.HashData(data), Sha256.Hash(data));
        }
    }

    [Fact]
    public void LargeInput_SameDigestAsFramework()
    {
        var data = new byte[1 << 20];
        new Random(99).NextBytes(data);
        Assert.Equal(SHA256.HashData(data), Sha256.Hash(data));
    }

    [Fact]
    public void StandardShortMessage_KnownDigest()
    {
        // FIPS 180-4 example "abc".
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            Convert.ToHexStringLower(Sha256.Hash(Encoding.ASCII.GetBytes("abc"))));
    }
}
