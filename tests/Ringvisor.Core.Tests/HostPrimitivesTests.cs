// The managed SHA-256 against the BCL's (OpenSSL on Linux) and the FIPS 180-4 examples, over every padding case; the
// kernel-backed random source fills what it is given.
using System.Text;
using Ringvisor.Core.Hashing;
using Ringvisor.Core.Native;

namespace Ringvisor.Core.Tests;

public sealed class HostPrimitivesTests
{
    [Theory]
    [InlineData("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    [InlineData("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    [InlineData("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")]
    public void Sha256_FipsExamples(string message, string digest)
    {
        Assert.Equal(digest, Convert.ToHexStringLower(Sha256.HashData(Encoding.ASCII.GetBytes(message))));
    }

    [Fact]
    public void Sha256_EveryLengthAroundTheBlockBoundaries_MatchesBcl()
    {
        // Lengths 0..300 cover one and two padding blocks, the 55/56-byte split and several full blocks.
        var rng = new Random(1234);
        for (int len = 0; len <= 300; len++)
        {
            var data = new byte[len];
            rng.NextBytes(data);
            Assert.Equal(System.Security.Cryptography.SHA256.HashData(data), Sha256.HashData(data));
        }
    }

    [Fact]
    public void HostRandom_FillsLargeAndSmallBuffers()
    {
        // 64 KiB (a virtio-rng request's maximum) of zeros and an odd-sized buffer: both come back changed (the
        // chance of 64 KiB staying all zero is nil).
        var big = new byte[64 * 1024];
        HostRandom.Fill(big);
        Assert.Contains(big, b => b != 0);

        var a = new byte[33];
        var b = new byte[33];
        HostRandom.Fill(a);
        HostRandom.Fill(b);
        Assert.NotEqual(a, b);
        HostRandom.Fill(Span<byte>.Empty);
    }
}
