using System.Security.Cryptography;
using Har.Audit.Hashing;

namespace Har.Audit.Tests.Hashing;

/// <summary>The per-entry SHA-256 (low-level libcrypto where available) against .NET's <see cref="SHA256"/>.</summary>
public sealed class Sha256Tests
{
    [Fact]
    public void Hash_AllLengthsAndSplits_MatchSystemSha256()
    {
        var rng = new Random(11);
        var data = new byte[300];
        rng.NextBytes(data);
        Span<byte> expected = stackalloc byte[32];
        Span<byte> actual = stackalloc byte[32];
        for (var length = 0; length <= data.Length; length++)
        {
            var input = data.AsSpan(0, length);
            SHA256.HashData(input, expected);
            Sha256.Hash(input, actual);
            Assert.True(expected.SequenceEqual(actual), $"length {length}");

            var prefixed = new byte[length + 1];
            prefixed[0] = 0x00;
            input.CopyTo(prefixed.AsSpan(1));
            SHA256.HashData(prefixed, expected);
            Sha256.Hash(0x00, input, actual);
            Assert.True(expected.SequenceEqual(actual), $"prefixed length {length}");

            var split = length / 3;
            prefixed[0] = 0x01;
            SHA256.HashData(prefixed, expected);
            Sha256.Hash(0x01, input[..split], input[split..], actual);
            Assert.True(expected.SequenceEqual(actual), $"split {split}+{length - split}");
        }
    }

    [Fact]
    public void Hash_DestinationOverlapsInput_ReadsInputFirst()
    {
        var left = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        var right = Enumerable.Range(100, 32).Select(i => (byte)i).ToArray();
        var expected = SHA256.HashData([0x01, .. left, .. right]);

        Sha256.Hash(0x01, left, right, right);

        Assert.Equal(expected, right);
    }

    [Fact]
    public void Managed_LongInput_MatchesSystemSha256()
    {
        var data = new byte[5000];
        new Random(3).NextBytes(data);
        var actual = new byte[32];

        Sha256.Managed([0x00], data, data.AsSpan(0, 17), actual);

        Assert.Equal(SHA256.HashData([0x00, .. data, .. data.AsSpan(0, 17)]), actual);
    }

    [Fact]
    public void IsNative_OnLinux_UsesLowLevelLibcryptoWhenExported()
    {
        // Documents which path this machine takes; the digests above are checked either way.
        if (!OperatingSystem.IsLinux() || !System.Runtime.InteropServices.NativeLibrary.TryLoad("libcrypto.so.3", out _))
        {
            Assert.Skip("No libcrypto.so.3 here: the .NET SHA-256 path is used.");
        }

        Assert.True(Sha256.IsNative);
    }
}
