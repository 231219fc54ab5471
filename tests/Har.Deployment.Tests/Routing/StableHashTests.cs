using System.Globalization;
using Har.Deployment.Tests.Support;

namespace Har.Deployment.Tests.Routing;

public sealed class StableHashTests
{
    [Fact]
    public async Task Hash64_SameKeyInAnotherProcess_SameValue()
    {
        // string.GetHashCode is randomised per process; the routing hash must not be.
        var keys = new[] { "device-1", "a", "ünïcødé-ß", new string('x', 37) };
        var here = keys.Select(k => StableHash.Hash64(k, 42).ToString(CultureInfo.InvariantCulture));
        var result = await ProcessHost.RunAsync(["hash", "42", .. keys]);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(string.Join('\n', here), result.Output.Trim().ReplaceLineEndings("\n"));
        Assert.NotEqual(
            "device-1".GetHashCode(StringComparison.Ordinal).ToString(CultureInfo.InvariantCulture),
            (await ProcessHost.RunAsync(["string-hash", "device-1"])).Output.Trim());
    }

    [Fact]
    public void Hash64_EmptyInputSeedZero_PublishedXxh3Value()
    {
        // XXH3-64 of zero bytes with seed 0 is 0x2D06800538D394C2 (the xxHash reference test vector).
        Assert.Equal(0x2D06800538D394C2UL, StableHash.Hash64(ReadOnlySpan<char>.Empty, 0));
    }

    [Theory]
    [InlineData("a", 0UL, 0x0D78BAAC08237DDBUL)]
    [InlineData("a", 42UL, 0x5DEE2B7CF31D0371UL)]
    [InlineData("device-1", 0UL, 0x7EE378D5478AC729UL)]
    [InlineData("device-1", 42UL, 0x15EEFCFDEB6061CBUL)]
    [InlineData("device-1", ulong.MaxValue, 0xFF226F90F4B608D8UL)]
    [InlineData("ünïcødé-ß", 42UL, 0x3F905BBB005F11E5UL)]
    [InlineData("tenant-eu-west-1/device/3f2a9c1e-7b4d-4e21-9a6f-0c5d8e2b1a47", 0UL, 0x20F25338B444CD0DUL)]
    [InlineData("tenant-eu-west-1/device/3f2a9c1e-7b4d-4e21-9a6f-0c5d8e2b1a47", 42UL, 0x805A67AC3A2BD5A1UL)]
    [InlineData("tenant-eu-west-1/device/3f2a9c1e-7b4d-4e21-9a6f-0c5d8e2b1a47", ulong.MaxValue, 0xDA09F79482D1D249UL)]
    public void Hash64_Key_ReferenceXxh3OfUtf16LeBytes(string key, ulong seed, ulong expected)
    {
        // Expected values from the reference C implementation (libxxhash 0.8.1 through python3-xxhash:
        // xxhash.xxh3_64_intdigest(key.encode("utf-16-le"), seed=seed)): 2, 16, 18 and 120 bytes, one
        // input of each of XXH3's short-input paths.
        Assert.Equal(expected, StableHash.Hash64(key, seed));
    }

    [Theory]
    [InlineData('x', 37, 0xFB4A4263A5405415UL)]
    [InlineData('y', 100, 0x98D8E324C8A12217UL)]
    [InlineData('z', 130, 0xEE0F835DF1499548UL)]
    public void Hash64_RepeatedChar_ReferenceXxh3OfUtf16LeBytes(char c, int length, ulong expected)
    {
        // Same reference, seed 42: 74 bytes (17–128 path), 200 bytes (129–240 path), 260 bytes (long path).
        Assert.Equal(expected, StableHash.Hash64(new string(c, length), 42));
    }

    [Fact]
    public void Hash64_DifferentSeeds_DifferentValues()
    {
        Assert.NotEqual(StableHash.Hash64("device-1", 1), StableHash.Hash64("device-1", 2));
    }

    [Fact]
    public void Hash64_EveryLengthUpTo130_SingleCharChangeChangesHash()
    {
        // 130 chars = 260 bytes: every one of XXH3's input-size paths (1–3, 4–8, 9–16, 17–128, 129–240, > 240 bytes).
        for (var n = 1; n <= 130; n++)
        {
            var key = new string('k', n).ToCharArray();
            var original = StableHash.Hash64(key, 7);
            for (var i = 0; i < n; i++)
            {
                key[i] = 'j';
                Assert.NotEqual(original, StableHash.Hash64(key, 7));
                key[i] = 'k';
            }
        }
    }

    [Fact]
    public void Bucket_AlwaysInRange()
    {
        var rng = new Random(3);
        for (var i = 0; i < 100_000; i++)
        {
            var b = StableHash.Bucket((ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 63), 10_000);
            Assert.InRange(b, 0, 9_999);
        }

        Assert.Equal(9_999, StableHash.Bucket(ulong.MaxValue, 10_000));
        Assert.Equal(0, StableHash.Bucket(0, 10_000));
    }
}
